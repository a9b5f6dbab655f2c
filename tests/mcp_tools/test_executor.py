"""The executor's error mapping: what the client sent is never reported as an outage."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from mcp_tools.auth import principal_from_api_key
from mcp_tools.context import OperationContext
from mcp_tools.executor import execute
from mcp_tools.registry import Operation, register_temporarily
from mcp_tools.schemas import Empty, Input, Output

pytestmark = pytest.mark.django_db(transaction=True)


class LooseIn(BaseModel):
    """A schema that forgot the column's bounds (not an `Input`, so NUL gets through too)."""

    label: str
    metadata: dict[str, str] = {}


class Stored(Output):
    stored: bool


def _store(ctx: OperationContext, params: LooseIn) -> Stored:
    from mcp_tools.models import AgentSession

    AgentSession.objects.create(tenant=ctx.tenant, label=params.label, metadata=params.metadata)
    return Stored(stored=True)


STORE = Operation(
    service="test",
    action="store_label",
    title="Store a label",
    description="Stores a label without bounding it first.",
    input_model=LooseIn,
    output_model=Stored,
    func=_store,  # type: ignore[arg-type]
    permission="agent.execute",
)


def sessions() -> int:
    from mcp_tools.models import AgentSession
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        return AgentSession.objects.count()


def test_values_the_database_refuses_are_invalid_input_naming_the_field(make_tenant: Any) -> None:
    principal = principal_from_api_key(make_tenant("acme").key)
    with register_temporarily(STORE):
        too_long = execute(
            "test_store_label", {"label": "x" * 300}, principal=principal, surface="rest"
        )
        nul = execute("test_store_label", {"label": "a\x00b"}, principal=principal, surface="rest")
    for result in (too_long, nul):
        assert result.error is not None
        assert result.error.http_status == 422 and result.error.code == "invalid_input"
        assert [d["field"] for d in result.error.details] == ["label"]
    assert too_long.error is not None and "at most 200 characters" in too_long.error.message
    assert nul.error is not None and "NUL" in nul.error.message
    assert sessions() == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"label": "a\x00b"}, "label"),
        ({"label": "ok", "metadata": {"k": "v\x00"}}, "metadata"),
        ({"label": "ok", "metadata": {"k\x00": "v"}}, "metadata"),
    ],
)
def test_nul_is_refused_at_the_schema(make_tenant: Any, arguments: Any, field: str) -> None:
    principal = principal_from_api_key(make_tenant("acme").key)
    result = execute("agent_create_session", arguments, principal=principal, surface="mcp-http")
    assert result.error is not None and result.error.http_status == 422
    assert result.error.details[0]["field"] == field
    assert result.error.details[0]["rule"] == "string_nul"
    assert sessions() == 0


def test_every_input_model_refuses_nul() -> None:
    from mcp_tools.registry import get_registry

    for op in get_registry().all():
        assert issubclass(op.input_model, Input), op.name
    assert issubclass(Empty, Input)


def test_input_nested_too_deep_is_refused_without_recursion(make_tenant: Any) -> None:
    principal = principal_from_api_key(make_tenant("acme").key)
    deep: Any = "x"
    for _ in range(5000):
        deep = {"k": deep}
    result = execute(
        "agent_create_session",
        {"label": "ok", "metadata": deep},
        principal=principal,
        surface="mcp-stdio",
    )
    assert result.error is not None and result.error.http_status == 422
    assert "nested deeper than 64 levels" in result.error.message
    assert sessions() == 0


def test_an_email_the_schema_allows_is_accepted_and_a_malformed_one_names_the_field() -> None:
    """Found by the REST fuzzer: `format: email` allows an address at a special-use domain
    (`x@shop.test`), which email-validator refused; the schema and validation now agree."""
    from pydantic import TypeAdapter, ValidationError

    from mcp_tools.schemas import Email

    email = TypeAdapter(Email)
    assert email.validate_python("e&`b%*lgu&@m.test") == "e&`b%*lgu&@m.test"
    assert email.validate_python("Buyer@Example.com") == "Buyer@example.com"
    for bad in ("no-at-sign", "two@@signs.com", "a b@x.com"):
        with pytest.raises(ValidationError, match="not a valid email address"):
            email.validate_python(bad)


def test_telemetry_records_only_registered_operation_names(broker: Any, make_tenant: Any) -> None:
    import json

    from mcp_tools.executor import UNKNOWN_OPERATION_BUCKET
    from telemetry.recording import TELEMETRY_TOPIC, telemetry_flush
    from tests.smarteros.backbone import read_all

    principal = principal_from_api_key(make_tenant("acme").key)
    made_up = "x" * 120
    assert execute(made_up, {}, principal=principal, surface="rest").error is not None
    assert execute("tenant_get_tenant", {}, principal=principal, surface="rest").ok
    telemetry_flush(10)
    records = [json.loads(m.value())["data"] for m in read_all(TELEMETRY_TOPIC, expected=2)]
    names = {record["operation"] for record in records}
    assert names == {UNKNOWN_OPERATION_BUCKET, "tenant_get_tenant"}
    assert not any(made_up in json.dumps(record) for record in records)
