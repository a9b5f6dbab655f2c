"""The topics page searches and paginates on the server from the tenants table and the catalog:
a platform admin's page holds one page of topics, whatever the broker holds."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from smarteros.events.catalog import platform_topics, tenant_every_topic
from smarteros.infra.kafka import admin_client
from telemetry.topics.listing import PER_PAGE
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
from tests.telemetry.topics.conftest import produce

pytestmark = pytest.mark.django_db(transaction=True)

PER_TENANT = len(tenant_every_topic("x"))  # dead-letter twins listed before they exist


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-topic="([^"]+)"', html)


def test_platform_admin_pages_and_searches_by_tenant_name_and_kind(world: Any) -> None:
    # 150 more tenants in the table (their topics need not exist for the listing).
    with dangerously_unscoped():
        Tenant.objects.bulk_create(
            Tenant(slug=f"shop{n:03d}", name=f"Shop {n}", status="active") for n in range(150)
        )
    # A topic on the broker that is no catalog topic of a current tenant is not listed.
    admin = admin_client()
    for future in admin.create_topics([NewTopic("stray.topic", 1, 1)]).values():
        future.result()
    produce("acme.shopify.webhooks", {"n": 1}, partition=0)
    client = world.client("root")

    first = client.get("/topics/")
    html = first.content.decode()
    total = len(platform_topics()) + 152 * PER_TENANT
    assert first.status_code == 200
    assert len(rows(html)) == PER_PAGE and f"{total} topics, page 1 of" in html
    assert "smarteros.events" in html and "stray.topic" not in html
    assert 'rel="next" href="?page=2"' in html

    last_page = -(-total // PER_PAGE)
    last = client.get("/topics/", {"page": last_page}).content.decode()
    assert len(rows(last)) == total - (last_page - 1) * PER_PAGE
    assert rows(last)[-1] == "shop149.whatsapp.outbound.dlq"

    acme = client.get("/topics/", {"tenant": "acme"}).content.decode()
    assert set(rows(acme)) == {spec.name for spec in tenant_every_topic("acme")}
    row = acme[acme.index('data-topic="acme.shopify.webhooks"') :]
    # Asked of the broker: acme's topic is there (a link to its messages).
    assert 'href="/topics/view/?topic=acme.shopify.webhooks"' in row[: row.index("</tr>")]

    shop7 = client.get("/topics/", {"tenant": "shop007", "kind": "dead-letter"}).content.decode()
    assert rows(shop7) == sorted(
        s.name for s in tenant_every_topic("shop007") if s.name.endswith(".dlq")
    )
    # In the table; a dead-letter topic is created by its first dead letter.
    assert "(no dead letter yet)" in shop7 and "(not on the broker)" not in shop7
    never = client.get("/topics/", {"tenant": "shop007", "kind": "tenant"}).content.decode()
    assert "(not on the broker)" in never  # never provisioned

    platform = client.get("/topics/", {"kind": "platform"}).content.decode()
    assert rows(platform) == sorted(
        s.name for s in platform_topics() if not s.name.endswith(".dlq")
    )

    named = client.get(
        "/topics/", {"name": "products", "tenant": "shop01", "kind": "tenant"}
    ).content.decode()
    assert rows(named) == [f"shop01{n}.shopify.products" for n in range(10)]

    # Bounded: a page costs the same however many tenants the table holds.
    started = time.perf_counter()
    for page in (1, 5, last_page):
        assert client.get("/topics/", {"page": page}).status_code == 200
    assert (time.perf_counter() - started) / 3 < 2.0


def test_members_search_their_own_topics_only(world: Any) -> None:
    client = world.client("acme-viewer")
    html = client.get("/topics/", {"name": "webhooks"}).content.decode()
    assert rows(html) == ["acme.shopify.webhooks", "acme.shopify.webhooks.dlq"]
    assert rows(client.get("/topics/", {"tenant": "globex"}).content.decode()) == []
    assert rows(client.get("/topics/", {"kind": "platform"}).content.decode()) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page": "9" * 30}, "page"),
        ({"kind": "everything"}, "kind"),
        ({"name": "n" * 101}, "name"),
        ({"tenant": "a\x00b"}, "tenant"),
    ],
)
def test_bad_search_parameters_are_400_naming_the_field(
    world: Any, params: dict[str, str], field: str
) -> None:
    response = world.client("root").get("/topics/", params)
    assert response.status_code == 400
    assert response.json()["field"] == field
