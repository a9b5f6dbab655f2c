"""An operation's `emits=` is what it publishes: a call that queues an undeclared event type
fails outside production (so the suite finds the drift), and is only logged in production."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_tools.auth import principal_from_api_key
from mcp_tools.context import OperationContext
from mcp_tools.executor import execute
from mcp_tools.registry import Operation, register_temporarily
from mcp_tools.schemas import Empty, Output
from smarteros.events.outbox import tenant_event_emit

pytestmark = pytest.mark.django_db(transaction=True)


class Done(Output):
    ok: bool


def _shout(ctx: OperationContext, params: Empty) -> Done:
    tenant_event_emit(
        tenant=ctx.tenant,
        topic="tenant.provisioning",
        event_type="tenant.provisioning.step",
        data={"step": "test", "outcome": "ok"},
        key=ctx.tenant.slug,
        source="test",
        trace_id=ctx.trace_id,
    )
    return Done(ok=True)


def _emitter(emits: tuple[str, ...]) -> Operation:
    return Operation(
        service="test",
        action="shout",
        title="Shout",
        description="Queues one provisioning step event.",
        input_model=Empty,
        output_model=Done,
        func=_shout,  # type: ignore[arg-type]
        permission="tenant.read",
        emits=emits,
    )


@pytest.mark.parametrize("strict", [True, False])
def test_an_undeclared_event_type_is_refused_outside_production(
    make_tenant: Any, settings: Any, strict: bool
) -> None:
    settings.OPERATION_EMITS_STRICT = strict
    principal = principal_from_api_key(make_tenant("acme").key)
    with register_temporarily(_emitter(())):
        result = execute("test_shout", {}, principal=principal, surface="rest")
    assert (result.error is not None) is strict
    if strict:
        assert "undeclared event type(s) tenant.provisioning.step" in str(result.error.message)
    with register_temporarily(_emitter(("tenant.provisioning.step",))):
        assert execute("test_shout", {}, principal=principal, surface="rest").ok


def test_every_declared_event_type_has_a_schema() -> None:
    from mcp_tools.registry import get_registry
    from smarteros.events.schemas import UnknownEventType, schema_for

    unknown = []
    for op in get_registry().all():
        for event_type in op.emits:
            try:
                schema_for(event_type)
            except UnknownEventType:
                unknown.append(f"{op.name}: {event_type}")
    assert not unknown, unknown
