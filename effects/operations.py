"""Reading an outside effect's state after the call that recorded it."""

from __future__ import annotations

from pydantic import Field

from effects.models import Effect
from effects.schemas import EffectOut
from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import Input
from smarteros.errors import NotFound


class GetEffectIn(Input):
    effect_id: int = Field(ge=1, description="effect_id from the answer of the call.")


@operation(service="agent", title="Get effect", permission="agent.read", read_only=True)
def get_effect(ctx: OperationContext, params: GetEffectIn) -> EffectOut:
    """State of an outside effect (a WhatsApp send, an n8n trigger, a Shopify write) that an
    earlier call recorded: pending, done with the provider's answer, or failed with the reason."""
    effect = Effect.objects.filter(tenant=ctx.tenant, pk=params.effect_id).first()
    if effect is None:
        raise NotFound(f"effect_id: no effect {params.effect_id} in this tenant")
    return EffectOut.of(effect)
