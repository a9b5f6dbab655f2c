"""Outside effects: recorded with the state that wants them, performed once after commit.

effect_record() inserts the intent in the caller's transaction (one row per tenant, kind and
key: recording the same effect again, as a replayed batch does, finds the row already there) and
enqueues it when that transaction commits. effect_perform() claims the row (a lease, so a second
worker leaves it alone), calls the provider with the effect's idempotency key outside any
transaction, and records the result and its consequences in one transaction. A worker that dies
after the provider acted but before the record leaves the lease to expire; whoever performs it
next sends the same key, and the provider answers with what it already did.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from pydantic import BaseModel, ValidationError

from effects.models import Effect
from effects.registry import EffectCall, effect_definition
from mcp_tools.errors import Conflict, DependencyUnavailable, OperationError, UpstreamError
from smarteros.context import bound
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped, tenant_read_scope, tenant_scope

log = logging.getLogger(__name__)

_COLUMNS = "id, tenant_id, kind, key, payload, state, attempts, last_error, result, trace_id"
_INSERT = (
    "INSERT INTO effects_effect (tenant_id, kind, key, payload, state, attempts, last_error,"
    " not_before, trace_id, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, 'pending', 0, '', now(), %s, now(), now())"
    f" ON CONFLICT (tenant_id, kind, key) DO NOTHING RETURNING {_COLUMNS}"
)
_SELECT = f"SELECT {_COLUMNS} FROM effects_effect WHERE tenant_id = %s AND kind = %s AND key = %s"


def effect_record(
    *,
    tenant: Tenant,
    kind: str,
    key: str,
    payload: BaseModel | dict[str, Any],
    trace_id: str = "",
    inline: bool = False,
) -> Effect:
    """Record that `tenant` wants effect `kind` once for `key`, in the caller's transaction, and
    have it performed after that transaction commits (by a Celery task; or right away in this
    thread with `inline`, see effect_perform_on_commit). Recording it again returns the first
    record; the same key with a different payload is a Conflict."""
    if not connection.in_atomic_block:
        raise RuntimeError("effect_record belongs in the transaction of the state that wants it")
    definition = effect_definition(kind)
    data = definition.payload_model.model_validate(
        payload.model_dump() if isinstance(payload, BaseModel) else payload
    ).model_dump(mode="json")
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [tenant.pk, kind, key, json.dumps(data), trace_id])
        row = cursor.fetchone()
        created = row is not None
        if row is None:
            cursor.execute(_SELECT, [tenant.pk, kind, key])
            row = cursor.fetchone()
    effect = _from_row(row)
    if not created and effect.payload != data:
        raise Conflict(f"key: {key!r} was already used for a different {kind} request")
    if effect.state == Effect.State.PENDING and not inline:
        transaction.on_commit(lambda: effect_enqueue(effect), robust=True)
    return effect


def _from_row(row: Any) -> Effect:
    names = [c.strip() for c in _COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    for field in ("payload", "result"):
        if isinstance(values[field], str):
            values[field] = json.loads(values[field])
    return Effect(**values)


def effect_enqueue(effect: Effect, *, countdown: float = 0) -> None:
    """Hand the effect to a Celery worker (after `countdown` seconds)."""
    from effects.tasks import perform

    perform.apply_async((effect.pk, effect.tenant_id), countdown=countdown or None)


def effect_perform_on_commit(effect: Effect, then: Callable[[Effect], None]) -> None:
    """For operations that answer at once: when the caller's transaction commits, perform the
    effect in this thread (unless it is settled already) and pass its state to `then`, which
    fills in the answer. A failure that may pass is left to the Celery task's retries."""

    def run() -> None:
        if effect.state == Effect.State.PENDING:
            outcome = effect_perform(effect_id=effect.pk, tenant_id=effect.tenant_id)
            if outcome.retry_in is not None:
                effect_enqueue(effect, countdown=outcome.retry_in)
            elif outcome.status is Status.BUSY:
                effect_enqueue(effect)  # taken or not yet due: the task checks again later
        then(effect_get(tenant_id=effect.tenant_id, effect_id=effect.pk))

    if effect.state != Effect.State.PENDING or not connection.in_atomic_block:
        then(effect)
    else:
        transaction.on_commit(run)


def effect_get(*, tenant_id: int, effect_id: int) -> Effect:
    """One effect of the tenant (Effect.DoesNotExist if it has none of that id)."""
    with tenant_read_scope(tenant_id):
        return Effect.objects.get(pk=effect_id)


class Status(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    RETRY = "retry"
    BUSY = "busy"  # another worker holds it, or it is not due yet
    SETTLED = "settled"  # done or failed already


@dataclass(frozen=True)
class Outcome:
    status: Status
    retry_in: float | None = None


_CLAIM = (
    "UPDATE effects_effect SET attempts = attempts + 1, updated_at = now(),"
    " not_before = now() + make_interval(secs => %s)"
    " WHERE id = %s AND state = 'pending' AND not_before <= now()"
    f" RETURNING {_COLUMNS}"
)
_DONE = (
    "UPDATE effects_effect SET state = 'done', result = %s, last_error = '', done_at = now(),"
    " updated_at = now() WHERE id = %s AND state = 'pending'"
)
_RELEASE = (
    "UPDATE effects_effect SET state = %s, last_error = %s, updated_at = now(),"
    " not_before = now() + make_interval(secs => %s) WHERE id = %s AND state = 'pending'"
)


def effect_perform(*, effect_id: int, tenant_id: int) -> Outcome:
    """Perform one pending effect if it is due and nobody holds it: claim, call the provider,
    record. Says what happened, and when to try again if it may pass."""
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(_CLAIM, [settings.EFFECT_LEASE_SECONDS, effect_id])
        row = cursor.fetchone()
        if row is None:
            cursor.execute("SELECT state FROM effects_effect WHERE id = %s", [effect_id])
            state = cursor.fetchone()
    if row is None:
        busy = state is not None and state[0] == Effect.State.PENDING
        return Outcome(Status.BUSY if busy else Status.SETTLED)
    effect = _from_row(row)
    definition = effect_definition(effect.kind)
    tenant = Tenant.objects.get(pk=tenant_id)
    call = EffectCall(
        tenant=tenant,
        payload=definition.payload_model.model_validate(effect.payload),
        key=effect.key,
        idempotency_key=effect.idempotency_key,
        effect_id=effect.pk,
        trace_id=effect.trace_id,
        attempt=effect.attempts,
    )
    with bound(tenant_slug=tenant.slug, trace_id=effect.trace_id or None):
        try:
            with tenant_read_scope(tenant_id):
                result = definition.perform(call)
        except Exception as exc:
            return _failed(effect, exc, retryable=_may_pass(exc))
        try:
            with tenant_scope(tenant_id):
                with connection.cursor() as cursor:
                    cursor.execute(_DONE, [json.dumps(result), effect.pk])
                    recorded = cursor.rowcount == 1
                if recorded and definition.on_done is not None:
                    definition.on_done(call, result)
        except Exception as exc:
            # The provider acted; the next attempt sends the same idempotency key.
            log.exception("effect %s was performed but could not be recorded", effect.pk)
            return _failed(effect, exc, retryable=True, prefix="performed; recording failed: ")
    return Outcome(Status.DONE)


def _may_pass(exc: Exception) -> bool:
    if isinstance(exc, DependencyUnavailable | UpstreamError):
        return True
    # Not connected, invalid input, a payload that no longer validates: retrying cannot help.
    return not isinstance(exc, OperationError | ValidationError)


def _failed(effect: Effect, exc: Exception, *, retryable: bool, prefix: str = "") -> Outcome:
    reason = prefix + (
        f"{exc.code}: {exc.message}"
        if isinstance(exc, OperationError)
        else f"{type(exc).__name__}: {exc}"
    )
    delays = settings.EFFECT_RETRY_DELAYS
    final = not retryable or effect.attempts > len(delays)
    delay = 0.0 if final else float(delays[effect.attempts - 1])
    if final:
        log.warning("effect %s (%s) failed: %s", effect.pk, effect.kind, reason)
    try:
        with tenant_scope(effect.tenant_id), connection.cursor() as cursor:
            state = Effect.State.FAILED if final else Effect.State.PENDING
            cursor.execute(_RELEASE, [state, reason[:4000], delay, effect.pk])
    except Exception:
        # Unrecorded: the lease runs out and the requeue task takes it up again.
        log.exception("could not record the failure of effect %s", effect.pk)
        return Outcome(Status.BUSY)
    return Outcome(Status.FAILED) if final else Outcome(Status.RETRY, retry_in=delay)


def effects_requeue_lost(*, older_than: timedelta | None = None, limit: int = 1000) -> int:
    """Enqueue again the pending effects due for longer than EFFECT_REQUEUE_AFTER_SECONDS: their
    enqueue was lost (a process died between commit and enqueue) or their worker died holding
    them. Returns how many."""
    age = (
        older_than
        if older_than is not None
        else timedelta(seconds=settings.EFFECT_REQUEUE_AFTER_SECONDS)
    )
    with dangerously_unscoped(), connection.cursor() as cursor:
        # Touching not_before keeps the next run from enqueueing the same effects again at once.
        cursor.execute(
            "UPDATE effects_effect SET not_before = now() WHERE id IN ("
            " SELECT id FROM effects_effect WHERE state = 'pending' AND not_before < %s"
            " ORDER BY not_before LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, tenant_id",
            [timezone.now() - age, limit],
        )
        rows = cursor.fetchall()
    for effect_id, tenant_id in rows:
        effect_enqueue(Effect(pk=effect_id, tenant_id=tenant_id))
    return len(rows)


def effect_retry(*, effect: Effect) -> bool:
    """Operator's retry of a failed effect: pending again, attempts from zero, enqueued after
    commit. False if it was not failed."""
    updated = Effect.objects.filter(pk=effect.pk, state=Effect.State.FAILED).update(
        state=Effect.State.PENDING, attempts=0, not_before=timezone.now(), updated_at=timezone.now()
    )
    if updated:
        transaction.on_commit(lambda: effect_enqueue(effect), robust=True)
    return bool(updated)
