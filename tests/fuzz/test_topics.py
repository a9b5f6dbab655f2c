"""The topic viewer's and telemetry's console views with hostile query parameters (page,
partition, offset, limit, start, filter, search, topic), as a viewer, a tenant admin and a
platform admin, against a real broker: never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.console_forms import hostile_numbers, hostile_values
from tests.fuzz.strategies import FUZZ
from tests.telemetry.topics.conftest import produce
from tests.telemetry.topics.conftest import world as world  # the broker, tenants and operators

pytestmark = pytest.mark.django_db

EXAMPLES = 200
ROLES = ["acme-viewer", "acme-admin", "root"]

numbers = st.one_of(
    st.sampled_from(["0", "1", "2", "5", "all", "100"]), hostile_numbers, hostile_values
)
topics = st.one_of(
    st.sampled_from(
        [
            "acme.shopify.webhooks",
            "acme.shopify.webhooks.dlq",
            "acme.whatsapp.inbound",
            "globex.shopify.webhooks",
            "smarteros.events",
            "no.such.topic",
        ]
    ),
    hostile_values,
)
starts = st.one_of(
    st.sampled_from(["newest", "oldest", "offset:0", "timestamp:0", "cursor:0-0", "before:0-1"]),
    st.builds(
        lambda kind, value: f"{kind}:{value}",
        st.sampled_from(["offset", "timestamp", "cursor", "before", "x"]),
        st.one_of(
            hostile_values,
            st.lists(
                st.tuples(numbers, numbers).map(lambda pair: f"{pair[0]}-{pair[1]}"), max_size=5
            ).map(",".join),
            st.sampled_from(["2026-01-31T00:00Z", "2026-01-31T00:00", "33658-01-01T00:00Z"]),
        ),
    ),
    hostile_values,
)
filters = st.one_of(
    st.sampled_from(["", "order", "value.n > 1", "value.n >", "[1,2].map(x, x * 2).size() > 1"]),
    hostile_values,
)
PARAMS = {
    "topic": topics,
    "partition": numbers,
    "offset": numbers,
    "limit": numbers,
    "page": numbers,
    "start": starts,
    "q": filters,
    "cel": filters,
    "mode": st.sampled_from(["live", "browse", ""]) | hostile_values,
    "again": st.sampled_from(["1", "0"]) | hostile_values,
    "tenant": st.sampled_from(["acme", "globex", ""]) | hostile_values,
    "name": filters,
    "kind": st.sampled_from(["tenant", "platform", "dead-letter", ""]) | hostile_values,
    "range": st.sampled_from(["1h", "24h", "7d"]) | hostile_values,
    "id": st.sampled_from(["0" * 32, "abc"]) | hostile_values,
}
VIEWS = [
    ("get", "/topics/", ["tenant", "name", "kind", "page"]),
    ("get", "/topics/view/", ["topic", "partition", "start", "limit", "q", "cel", "mode"]),
    ("get", "/topics/message/", ["topic", "partition", "offset"]),
    ("get", "/topics/export/", ["topic", "partition", "start", "limit", "q", "cel"]),
    ("post", "/topics/replay/", ["topic", "partition", "offset", "again"]),
    ("get", "/telemetry/", ["tenant", "range"]),
    ("get", "/telemetry/data.json", ["tenant", "range"]),
    ("get", "/telemetry/trace/", ["id"]),
]


@pytest.fixture
def viewer_world(world: Any) -> Any:
    for n in range(3):
        produce("acme.shopify.webhooks", {"n": n, "order": f"#{n}"}, partition=n % 3)
    return world


@settings(FUZZ, max_examples=EXAMPLES)
@given(data=st.data())
def test_topic_views_never_answer_5xx(viewer_world: Any, data: Any) -> None:
    method, path, names = data.draw(st.sampled_from(VIEWS), label="view")
    role = data.draw(st.sampled_from(ROLES), label="role")
    params = {
        name: data.draw(PARAMS[name], label=name)
        for name in names
        if data.draw(st.integers(0, 4)) > 0  # now and then a parameter is left out
    }
    client = viewer_world.client(role)
    response = client.post(path, params) if method == "post" else client.get(path, params)
    assert response.status_code < 500, (path, role, response.status_code, response.content[:300])
