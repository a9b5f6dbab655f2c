"""What operations with an outside effect answer: the effect's state, and the client's key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from effects.models import Effect
from mcp_tools.schemas import Output

IdempotencyKey = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,200}$"),
    Field(examples=["order-2026-11-29-0001"]),
]


def idempotency_key_field() -> Any:
    """The optional `idempotency_key` input of an operation with an outside effect."""
    return Field(
        default=None,
        description="Your key for this request (1-200 letters, digits, . _ : -): a retry with "
        "the same key returns the first call's effect instead of acting again. Omit it and "
        "every call acts anew.",
    )


class EffectOut(Output):
    effect_id: int = Field(description="Read it later with agent_get_effect.")
    kind: str = Field(description="What it does, e.g. whatsapp.send_message.")
    state: Literal["pending", "done", "failed"] = Field(
        description="done: the provider acted; pending: it will be (retried with backoff); "
        "failed: it gave up, see last_error."
    )
    attempts: int = Field(description="Calls made to the provider so far.")
    last_error: str = Field(description="Why the last attempt failed; empty if none did.")
    result: dict[str, Any] | None = Field(
        None, description="What the provider answered, once done."
    )
    created_at: datetime | None = Field(default=None, description="When it was recorded (UTC).")
    done_at: datetime | None = Field(default=None, description="When it was done (UTC).")

    @classmethod
    def of(cls, effect: Effect) -> EffectOut:
        return cls(
            effect_id=effect.pk,
            kind=effect.kind,
            state=effect.state,  # type: ignore[arg-type]
            attempts=effect.attempts,
            last_error=effect.last_error,
            result=effect.result,
            created_at=effect.created_at,
            done_at=effect.done_at,
        )
