"""The bounded parser, and a walk of the code that keeps every request reader on it.

The rule the walk enforces: in a module that reads client input (an HTTP request, a websocket
frame, an MCP line, a webhook's headers or payload), text becomes a number or a time only
through `smarteros.parsing`: no `int()`, `float()`, `str.isdigit()` / `isnumeric()` /
`isdecimal()`, `datetime.fromtimestamp()` / `fromisoformat()` or Django's `parse_datetime()`.
Each remaining call is listed below with why it is not client input. Django form
`IntegerField`s must state both bounds (an unbounded one reaches the database as an overflow).
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.exceptions import BadRequest

from smarteros.parsing import (
    INT64_MAX,
    InvalidValue,
    parse_content_length,
    parse_int,
    parse_iso_time,
    parse_limit,
    parse_offset,
    parse_page,
    parse_partition,
    parse_partition_or_all,
    parse_text,
    parse_unix_millis,
    parse_unix_time,
)
from tests.processes import ROOT

# ---------------------------------------------------------------------------------------------
# The parser


@pytest.mark.parametrize(
    "raw",
    ["²", "\u00b3", "\uff11\uff12", "\u0661", "9" * 5000, "9" * 21, "1_000", " 1", "1 ", "+1",
     "0x10", "1e3", "1.0", "", None, True, 1.0, [], "-1"],
)  # fmt: skip
def test_offsets_refuse_what_int_would_take_or_choke_on(raw: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_offset(raw)
    assert caught.value.field == "offset"
    assert "offset" in str(caught.value)
    # A 400 wherever it is not caught; a ValueError to pydantic and `except ValueError`.
    assert isinstance(caught.value, BadRequest) and isinstance(caught.value, ValueError)


def test_ranges_of_each_kind() -> None:
    assert parse_offset("0") == 0 and parse_offset(str(INT64_MAX)) == INT64_MAX
    with pytest.raises(InvalidValue):
        parse_offset(str(INT64_MAX + 1))
    assert parse_partition(2**31 - 1) == 2**31 - 1
    with pytest.raises(InvalidValue):
        parse_partition(2**31)
    assert parse_partition_or_all("all") is None and parse_partition_or_all("") is None
    assert parse_partition_or_all("3") == 3
    assert parse_page(None) == 1 and parse_page("7") == 7
    for bad in ("0", "1000001"):
        with pytest.raises(InvalidValue, match="page must be a whole number from 1 to 1000000"):
            parse_page(bad)
    assert parse_limit("", maximum=50, default=10) == 10
    with pytest.raises(InvalidValue, match="limit must be a whole number from 1 to 50"):
        parse_limit("51", maximum=50, default=10)
    assert parse_int("-5", field="n", minimum=-10, maximum=10) == -5
    assert parse_content_length(None) == 0 and parse_content_length("12") == 12
    with pytest.raises(InvalidValue, match="n is required"):
        parse_int(None, field="n", minimum=0, maximum=1)


def test_times_are_bounded_to_1970_through_2099() -> None:
    assert parse_unix_time("1749416400", field="t") == datetime(2025, 6, 8, 21, 0, tzinfo=UTC)
    assert parse_unix_millis("1749416400123", field="t") == 1749416400123
    for bad in ("999999999999", "4102444800", "-1", "²", "9" * 5000):
        with pytest.raises(InvalidValue, match="t must be Unix seconds"):
            parse_unix_time(bad, field="t")
    with pytest.raises(InvalidValue, match="Unix milliseconds"):
        parse_unix_millis(str(2**63), field="t")
    assert parse_iso_time("2026-01-31T12:00Z", field="t") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    for bad in ("2026-01-31T12:00", "33658-01-01T00:00Z", "0001-01-01T00:00Z", "x" * 41, "²"):
        with pytest.raises(InvalidValue):
            parse_iso_time(bad, field="t")
    assert parse_iso_time("2026-01-31T12:00", field="t", require_zone=False).tzinfo is None


def test_text_refuses_nul_and_length() -> None:
    assert parse_text(None, field="q", max_length=5) == ""
    assert parse_text(" ab ", field="q", max_length=5) == " ab "
    with pytest.raises(InvalidValue, match="q must not contain NUL characters"):
        parse_text("a\x00", field="q", max_length=5)
    with pytest.raises(InvalidValue, match="q must be at most 5 characters"):
        parse_text("abcdef", field="q", max_length=5)


# ---------------------------------------------------------------------------------------------
# Every reader of client input uses it

READS_REQUESTS = re.compile(
    r"HttpRequest|request\.(GET|POST|META|headers|body|read)|WebsocketConsumer"
)
# Readers the pattern cannot see: the MCP wire, and what interprets webhook headers and payloads
# or browse positions once a view has handed them over.
ALSO_READERS = (
    "tenants/console/*.py",
    "telemetry/topics/*.py",
    "mcp_tools/http.py",
    "mcp_tools/stdio_pipes.py",
    "mcp_tools/server.py",
    "integrations/payloads.py",
    "integrations/*/schemas.py",
    "integrations/*/signatures.py",
    "integrations/whatsapp/services.py",
    "telemetry/topics/browse.py",
)
NOT_CODE = {".venv", "node_modules", "tests", "migrations", "bench", "scripts", ".run"}
CONVERSIONS = {"int", "float"}
TEXT_TO_NUMBER_OR_TIME = {
    "isdigit",
    "isnumeric",
    "isdecimal",
    "fromtimestamp",
    "utcfromtimestamp",
    "fromisoformat",
    "parse_datetime",
    "parse_date",
}
# (module, the call as written, or its start) -> why it is not a client's text.
ALLOWED = {
    ("telemetry/topics/limits.py", "int(get_redis().eval("): "Redis's answer",
    ("telemetry/topics/overview.py", "int(entries['retention.ms'].value)"): (
        "the broker's topic configuration"
    ),
    ("tenants/console/progress.py", "int(tenant_id)"): "a tenant's primary key",
    ("tenants/console/queries.py", "int(messages)"): "a count from ClickHouse",
    ("tenants/console/queries.py", "int(calls)"): "a count from ClickHouse",
    ("tenants/console/queries.py", "int(errors)"): "a count from ClickHouse",
    ("integrations/inbound.py", "int(value or 0)"): "a counter read from Redis",
    ("mcp_tools/oauth/views.py", "int(count)"): "a counter read from Redis",
    ("mcp_tools/oauth/views.py", "int(application.created.timestamp())"): (
        "a saved application's creation time"
    ),
    ("integrations/shopify/schemas.py", "int(node.get('totalInventory') or 0)"): (
        "Shopify's GraphQL answer, typed Int by its schema; not a request to us"
    ),
    ("integrations/shopify/schemas.py", "int(v.get('inventoryQuantity') or 0)"): (
        "Shopify's GraphQL answer, typed Int by its schema; not a request to us"
    ),
    ("integrations/whatsapp/services.py", "int(error.get('code') or 0)"): (
        "already an int: StatusError.code is validated as one"
    ),
    ("smarteros/login_throttle.py", "int(client.ttl(key))"): "Redis's answer",
    ("smarteros/login_throttle.py", "int(count or 0)"): "a counter read from Redis",
    ("telemetry/topics/browse.py", "int(message.timestamp()[1])"): "the broker's record time",
    ("telemetry/topics/browse.py", "int(moment.timestamp() * 1000)"): (
        "a datetime the parser returned, to Kafka's milliseconds"
    ),
    ("telemetry/topics/consumers.py", "int(event['first'])"): (
        "a channel-layer event from this process's own tail, not the socket's client"
    ),
    ("telemetry/topics/views.py", "datetime.fromtimestamp(record['timestamp'] / 1000, tz=UTC)"): (
        "the broker's record time of a message being shown"
    ),
    ("tenants/admin.py", "int(user.pk)"): "the signed-in user's primary key",
    ("tenants/admin.py", "int(obj.pk)"): "a saved row's primary key",
    ("tenants/console/audit.py", "int(request.user.pk or 0)"): "the signed-in user's key",
    ("tenants/console/overview.py", "int(count)"): "a count from ClickHouse",
    ("tenants/console/overview.py", "int(c)"): "a count from ClickHouse",
    ("tenants/console/overview.py", "int(e)"): "a count from ClickHouse",
    ("tenants/console/overview.py", "float(p)"): "a latency from ClickHouse",
}


def request_readers() -> list[Path]:
    found = {
        path
        for path in ROOT.rglob("*.py")
        if not NOT_CODE & set(path.relative_to(ROOT).parts)
        and READS_REQUESTS.search(path.read_text())
    }
    for pattern in ALSO_READERS:
        found.update(ROOT.glob(pattern))
    return sorted(found)


def allowed(module: str, call: str) -> bool:
    return any(module == m and call.startswith(c) for m, c in ALLOWED)


def unparsed_conversions(path: Path) -> list[tuple[str, int, str]]:
    """Calls in `path` that turn text into a number or a time without the parser, and integer
    form fields without both bounds: (module, line, the call)."""
    module = str(path.relative_to(ROOT))
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        call = ast.unparse(node)
        if name == "IntegerField":
            if not {"min_value", "max_value"} <= {k.arg for k in node.keywords}:
                found.append((module, node.lineno, call))
        elif (
            (isinstance(func, ast.Name) and name in CONVERSIONS | TEXT_TO_NUMBER_OR_TIME)
            or (isinstance(func, ast.Attribute) and name in TEXT_TO_NUMBER_OR_TIME)
        ) and not allowed(module, call):
            found.append((module, node.lineno, call))
    return found


def test_the_walk_sees_every_surface() -> None:
    modules = {str(p.relative_to(ROOT)) for p in request_readers()}
    for surface in (
        "telemetry/topics/views.py",
        "telemetry/topics/consumers.py",
        "tenants/console/tenant_list.py",
        "tenants/console/audit.py",
        "tenants/console/lifecycle.py",
        "integrations/webhooks.py",
        "integrations/clerk/signatures.py",
        "integrations/whatsapp/schemas.py",
        "mcp_tools/rest.py",
        "mcp_tools/http.py",
    ):
        assert surface in modules, surface
    # Every exception still exists: a stale entry would hide a new call with the same text.
    calls = [
        (str(path.relative_to(ROOT)), ast.unparse(node))
        for path in request_readers()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
    ]
    stale = [(m, c) for m, c in ALLOWED if not any(m == n and k.startswith(c) for n, k in calls)]
    assert stale == []


def test_request_readers_convert_text_only_through_the_parser() -> None:
    found = [hit for path in request_readers() for hit in unparsed_conversions(path)]
    assert found == [], "\n".join(f"{m}:{line}: {call}" for m, line, call in found)
