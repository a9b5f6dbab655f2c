"""A dead-letter topic's page lists the events its consumer groups are retrying now ("Pending
(retrying)"), to every member of the tenant, masked as dead letters are; never another tenant's;
with Redis away the page still answers and says the list is unavailable."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from smarteros.events import pending
from smarteros.events.pending import PendingRetry
from smarteros.infra.redis import get_redis
from tenants.models import Membership
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(make_tenant: Callable[..., Any], settings: Any) -> Iterator[dict[str, Any]]:
    """Tenants acme and globex (fresh slugs), a viewer and an admin of acme, an admin of globex,
    a platform admin; pending entries under a consumer-group prefix of the test's own."""
    settings.KAFKA_CONSUMER_GROUP_PREFIX = f"test{secrets.token_hex(3)}"
    suffix = secrets.token_hex(3)
    acme, globex = make_tenant(f"acme{suffix}").tenant, make_tenant(f"globex{suffix}").tenant
    User = get_user_model()
    users = {
        "viewer": User.objects.create_user("acme-viewer"),
        "admin": User.objects.create_user("acme-admin"),
        "globex": User.objects.create_user("globex-admin"),
        "root": User.objects.create_superuser("root", "root@example.com", "pw-root"),
    }
    with dangerously_unscoped():
        Membership.objects.create(user=users["viewer"], tenant=acme, role="viewer")
        Membership.objects.create(user=users["admin"], tenant=acme, role="admin")
        Membership.objects.create(user=users["globex"], tenant=globex, role="admin")
    yield {"acme": acme.slug, "globex": globex.slug, "users": users}
    get_redis().delete(pending._key(acme.slug), pending._key(globex.slug))


def client(members: dict[str, Any], who: str) -> Client:
    c = Client()
    c.force_login(members["users"][who])
    return c


def retrying(slug: str, *, offset: int, error: str, topic: str = "shopify.webhooks") -> str:
    """An entry as a retrying member writes it after its first failed attempt; its event id."""
    event_id = f"evt-{slug}-{offset}"
    PendingRetry(
        group="flows",
        topic=f"{slug}.{topic}",
        partition=2,
        offset=offset,
        event_id=event_id,
        event_type="shopify.webhook.received",
        attempts=4,
    ).failed(attempt=1, error=error, delay=30)
    return event_id


def section(html: str) -> str:
    match = re.search(r'<section[^>]*id="dead-letters-pending".*?</section>', html, re.S)
    assert match, "no pending section"
    return match.group(0)


ERROR = "handler: RuntimeError: n8n refused password=hunter2secret for bob@example.com"


def test_every_member_sees_what_the_group_is_retrying_masked(members: dict[str, Any]) -> None:
    acme = members["acme"]
    retrying(acme, offset=41, error=ERROR)
    for who in ("viewer", "admin", "root"):
        page = client(members, who).get("/topics/view/", {"topic": f"{acme}.shopify.webhooks.dlq"})
        assert page.status_code == 200, who
        shown = section(page.content.decode())
        assert "1 retrying" in shown
        cells = [
            re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td.*?</td>", shown, re.S)
        ]
        assert cells[:2] == ["2", "41"] and cells[3:5] == ["flows", "1 of 4 failed"]
        assert cells[2].split() == ["shopify.webhook.received", f"evt-{acme}-41"]
        assert cells[5].startswith("handler: RuntimeError: n8n refused password=")
        assert re.fullmatch(r"in (29|30) s", cells[6]), cells[6]
        # The credential never reached Redis; the address is masked as the tenant chose.
        assert "hunter2secret" not in shown and "bob@example.com" not in shown


def test_no_tenant_sees_another_tenants_pending_entries(members: dict[str, Any]) -> None:
    acme, globex = members["acme"], members["globex"]
    acme_event = retrying(acme, offset=41, error="acme's failure")
    globex_event = retrying(globex, offset=41, error="globex's failure")
    globex_admin = client(members, "globex")
    denied = globex_admin.get("/topics/view/", {"topic": f"{acme}.shopify.webhooks.dlq"})
    assert denied.status_code == 404 and acme_event.encode() not in denied.content
    own = section(
        globex_admin.get(
            "/topics/view/", {"topic": f"{globex}.shopify.webhooks.dlq"}
        ).content.decode()
    )
    assert "1 retrying" in own and "globex&#x27;s failure" in own and "acme" not in own
    for who in ("viewer", "admin"):
        page = client(members, who).get("/topics/view/", {"topic": f"{acme}.shopify.webhooks.dlq"})
        shown = section(page.content.decode())
        assert acme_event in shown and globex_event not in shown and "globex" not in shown


def test_each_dead_letter_topic_lists_its_own_topics_events(members: dict[str, Any]) -> None:
    acme = members["acme"]
    retrying(acme, offset=5, error="an n8n result failed", topic="n8n.automation.result")
    viewer = client(members, "viewer")
    webhooks = viewer.get("/topics/view/", {"topic": f"{acme}.shopify.webhooks.dlq"})
    assert "0 retrying" in section(webhooks.content.decode())
    results = viewer.get("/topics/view/", {"topic": f"{acme}.n8n.automation.result.dlq"})
    assert "1 retrying" in section(results.content.decode())
    # Not a dead-letter topic: no pending list at all.
    plain = viewer.get("/topics/view/", {"topic": f"{acme}.shopify.webhooks"})
    assert plain.status_code == 200 and b"dead-letters-pending" not in plain.content


def test_the_list_refreshes_itself_and_drops_what_ended(members: dict[str, Any]) -> None:
    acme = members["acme"]
    entry = PendingRetry(
        group="flows",
        topic=f"{acme}.shopify.webhooks",
        partition=0,
        offset=9,
        event_id="evt-9",
        event_type="shopify.webhook.received",
        attempts=4,
    )
    entry.failed(attempt=3, error="boom", delay=5)
    viewer = client(members, "viewer")
    refresh = {"HX-Request": "true", "HX-Target": "dead-letters-pending"}
    topic = {"topic": f"{acme}.shopify.webhooks.dlq"}
    fragment = viewer.get("/topics/view/", topic, headers=refresh).content.decode()
    assert fragment.lstrip().startswith('<section class="card pending" id="dead-letters-pending"')
    assert "3 of 4 failed" in fragment and "<html" not in fragment
    entry.clear()  # dead-lettered or handled
    fragment = viewer.get("/topics/view/", topic, headers=refresh).content.decode()
    assert "0 retrying" in fragment and "evt-9" not in fragment


def test_with_redis_away_the_page_says_the_list_is_unavailable(
    members: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import redis

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setattr(pending, "get_redis", lambda: redis.Redis(port=closed))
    page = client(members, "viewer").get(
        "/topics/view/", {"topic": f"{members['acme']}.shopify.webhooks.dlq"}
    )
    assert page.status_code == 200
    assert "Retrying events unavailable: ConnectionError" in section(page.content.decode())
