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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from pydantic import BaseModel, ValidationError

from effects.models import Effect
from effects.registry import EffectCall, effect_definition
from smarteros.context import bound
from smarteros.errors import (
    Conflict,
    DependencyUnavailable,
    OperationError,
    OutcomeUnknown,
    UpstreamError,
)
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped, scoped_connection, tenant_read_scope, tenant_scope

log = logging.getLogger(__name__)

# Statements that return effects return every column of the model, so the Effect built from a
# row is whole and follows the model's changes.
_FIELDS = Effect._meta.concrete_fields
_COLUMNS = ", ".join(connection.ops.quote_name(str(field.column)) for field in _FIELDS)
_ATTNAMES = [field.attname for field in _FIELDS]
_JSON = [field.attname for field in _FIELDS if isinstance(field, models.JSONField)]
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
    connection = scoped_connection()
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
        _enqueue_after_commit(effect)
    return effect


_pending = threading.local()


def _enqueue_after_commit(effect: Effect) -> None:
    """Collect the transaction's effects and enqueue them together when it commits. An id left
    over from a transaction that rolled back is enqueued with the next one and found gone."""
    items = getattr(_pending, "items", None)
    if items is None:
        items = _pending.items = []
    items.append((effect.tenant_id, effect.pk))
    transaction.on_commit(_enqueue_pending, robust=True)


def _enqueue_pending() -> None:
    items, _pending.items = getattr(_pending, "items", None) or [], []
    if items:
        _hand_over(items)


def _hand_over(items: list[tuple[int, int]], *, countdown: float = 0) -> None:
    """effects_enqueue for effects committed already: if Celery's broker cannot take them, they
    stay pending (nothing is lost; effects.requeue_lost hands them over later) and the caller,
    whose transaction stands, is not failed for it."""
    from kombu.exceptions import OperationalError as BrokerUnreachable

    try:
        effects_enqueue(items, countdown=countdown)
    except BrokerUnreachable as exc:
        log.warning(
            "Celery's broker is unreachable (%s): %d effects stay pending until "
            "effects.requeue_lost enqueues them",
            exc,
            len(items),
        )


# The Celery task that performs effects (effects.tasks, which calls this module) registers under
# this name; enqueueing finds it in Celery's registry rather than importing it back.
PERFORM_TASK = "effects.perform"


def effects_enqueue(items: list[tuple[int, int]], *, countdown: float = 0) -> None:
    """Hand (tenant id, effect id) pairs to Celery workers, in tasks of up to EFFECT_BATCH_SIZE
    effects of one tenant, over one broker connection."""
    from smarteros.celery import app

    if PERFORM_TASK not in app.tasks:
        # Workers discover the apps' task modules at start; other processes (web, tests) now.
        autodiscover_modules("tasks")
    perform = app.tasks[PERFORM_TASK]
    per_tenant: dict[int, list[int]] = {}
    for tenant_id, effect_id in items:
        per_tenant.setdefault(tenant_id, []).append(effect_id)
    size = settings.EFFECT_BATCH_SIZE
    with app.producer_or_acquire() as producer:
        for tenant_id, ids in per_tenant.items():
            for start in range(0, len(ids), size):
                perform.apply_async(
                    (ids[start : start + size], tenant_id),
                    countdown=countdown or None,
                    producer=producer,
                )


def _from_row(row: Any) -> Effect:
    values = dict(zip(_ATTNAMES, row, strict=True))
    for name in _JSON:  # raw cursors return jsonb as text
        if isinstance(values[name], str):
            values[name] = json.loads(values[name])
    return Effect(**values)


def effect_enqueue(effect: Effect, *, countdown: float = 0) -> None:
    """Hand the committed effect to a Celery worker (after `countdown` seconds)."""
    _hand_over([(effect.tenant_id, effect.pk)], countdown=countdown)


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
    " WHERE id = ANY(%s) AND state = 'pending' AND not_before <= now()"
    f" RETURNING {_COLUMNS}"
)
_DONE = (
    "UPDATE effects_effect AS e SET state = 'done', result = v.result::jsonb, last_error = '',"
    " done_at = now(), updated_at = now()"
    " FROM unnest(%s::bigint[], %s::text[]) AS v(id, result)"
    " WHERE e.id = v.id AND e.state = 'pending' RETURNING e.id"
)
_RELEASE = (
    "UPDATE effects_effect SET state = %s, last_error = %s, updated_at = now(),"
    " not_before = now() + make_interval(secs => %s) WHERE id = %s AND state = 'pending'"
)


def effect_perform(*, effect_id: int, tenant_id: int) -> Outcome:
    """Perform one pending effect if it is due and nobody holds it: claim, call the provider,
    record. Says what happened, and when to try again if it may pass."""
    return effects_perform(effect_ids=[effect_id], tenant_id=tenant_id).get(
        effect_id, Outcome(Status.SETTLED)
    )


def effects_perform(*, effect_ids: list[int], tenant_id: int) -> dict[int, Outcome]:
    """Perform the due, unclaimed ones of a tenant's effects: one statement claims them all, each
    is performed in turn (its provider's client, credentials included, built once for them all),
    and one transaction records those that succeeded. Says what happened to each."""
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(_CLAIM, [settings.EFFECT_LEASE_SECONDS, list(effect_ids)])
        claimed = [_from_row(row) for row in cursor.fetchall()]
        outcomes: dict[int, Outcome] = {}
        if len(claimed) < len(effect_ids):
            cursor.execute(
                "SELECT id FROM effects_effect WHERE id = ANY(%s) AND state = 'pending'",
                [[i for i in effect_ids if i not in {e.pk for e in claimed}]],
            )
            outcomes = {row[0]: Outcome(Status.BUSY) for row in cursor.fetchall()}
    if not claimed:
        return outcomes
    with tenant_read_scope(tenant_id):
        tenant = Tenant.objects.get(pk=tenant_id)
    shared: dict[str, Any] = {}  # lives for this batch only: clients holding credentials
    performed: list[tuple[Effect, EffectCall, dict[str, Any]]] = []
    for effect in claimed:
        with bound(tenant_slug=tenant.slug, trace_id=effect.trace_id or None):
            try:
                definition = effect_definition(effect.kind)  # a kind no longer declared fails
                call = EffectCall(
                    tenant=tenant,
                    payload=definition.payload_model.model_validate(effect.payload),
                    key=effect.key,
                    idempotency_key=effect.idempotency_key,
                    effect_id=effect.pk,
                    trace_id=effect.trace_id,
                    attempt=effect.attempts,
                    shared=shared,
                )
                with tenant_read_scope(tenant_id):
                    result = definition.perform(call)
                if definition.retry_unknown:
                    performed.append((effect, call, result))
                else:
                    # A repeat could act twice (no de-duplication documented): recorded at once,
                    # so a worker that dies mid-batch repeats at most the call in flight.
                    outcomes.update(_record_done(tenant_id, [(effect, call, result)]))
            except OutcomeUnknown as exc:
                if effect_definition(effect.kind).retry_unknown:
                    outcomes[effect.pk] = _failed(effect, exc, retryable=True)
                else:
                    # Sending again could act twice: an operator looks, then retries or not.
                    outcomes[effect.pk] = _failed(effect, exc, retryable=False, suffix=UNKNOWN_HINT)
            except Exception as exc:
                outcomes[effect.pk] = _failed(effect, exc, retryable=_may_pass(exc))
    shared.clear()
    outcomes.update(_record_done(tenant_id, performed))
    return outcomes


def _record_done(
    tenant_id: int, performed: list[tuple[Effect, EffectCall, dict[str, Any]]]
) -> dict[int, Outcome]:
    """Mark the performed effects done, with their consequences (rows, events), in one
    transaction; if that fails, one by one, so one bad record does not hold back the rest."""
    if not performed:
        return {}
    try:
        with tenant_scope(tenant_id):
            _mark_done(performed)
        return {effect.pk: Outcome(Status.DONE) for effect, _, _ in performed}
    except Exception as exc:
        if len(performed) > 1:
            outcomes: dict[int, Outcome] = {}
            for item in performed:
                outcomes.update(_record_done(tenant_id, [item]))
            return outcomes
        effect, _, _ = performed[0]
        # The provider acted; the next attempt sends the same idempotency key.
        log.exception("effect %s was performed but could not be recorded", effect.pk)
        return {
            effect.pk: _failed(effect, exc, retryable=True, prefix="performed; recording failed: ")
        }


def _mark_done(performed: list[tuple[Effect, EffectCall, dict[str, Any]]]) -> None:
    """One statement marks them all done; each kind's on_done then runs once for those of its
    effects that this worker marked (another that took over an expired lease may have)."""
    with scoped_connection().cursor() as cursor:
        cursor.execute(
            _DONE,
            [[e.pk for e, _, _ in performed], [json.dumps(r) for _, _, r in performed]],
        )
        marked = {row[0] for row in cursor.fetchall()}
    per_kind: dict[str, list[tuple[EffectCall, dict[str, Any]]]] = {}
    for effect, call, result in performed:
        if effect.pk in marked:
            per_kind.setdefault(effect.kind, []).append((call, result))
    for kind, done in per_kind.items():
        on_done = effect_definition(kind).on_done
        if on_done is not None:
            on_done(done)


def _may_pass(exc: Exception) -> bool:
    # A provider's "retry after N seconds" (an LLM's 429, a spent daily budget) passes in time.
    if isinstance(exc, DependencyUnavailable | UpstreamError) or _retry_after(exc):
        return True
    # Not connected, invalid input, a payload that no longer validates: retrying cannot help.
    return not isinstance(exc, OperationError | ValidationError)


def _retry_after(exc: Exception) -> float:
    """The wait a provider asked for (its Retry-After), or 0."""
    seconds = getattr(exc, "retry_after", None)
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else 0.0


# What an operator reads on an effect that was not retried because it might have acted.
UNKNOWN_HINT = (
    "; not retried, since the provider may have acted: check whether it did (for a message, the "
    "conversation), then retry the effect only if it did not"
)


def _failed(
    effect: Effect, exc: Exception, *, retryable: bool, prefix: str = "", suffix: str = ""
) -> Outcome:
    reason = (
        prefix
        + (
            f"{exc.code}: {exc.message}"
            if isinstance(exc, OperationError)
            else f"{type(exc).__name__}: {exc}"
        )
        + suffix
    )
    delays = settings.EFFECT_RETRY_DELAYS
    final = not retryable or effect.attempts > len(delays)
    delay = 0.0 if final else max(float(delays[effect.attempts - 1]), _retry_after(exc))
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
    with dangerously_unscoped() as platform, platform.cursor() as cursor:
        # Touching not_before keeps the next run from enqueueing the same effects again at once.
        cursor.execute(
            "UPDATE effects_effect SET not_before = now() WHERE id IN ("
            " SELECT id FROM effects_effect WHERE state = 'pending' AND not_before < %s"
            " ORDER BY not_before LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, tenant_id",
            [timezone.now() - age, limit],
        )
        rows = cursor.fetchall()
    effects_enqueue([(tenant_id, effect_id) for effect_id, tenant_id in rows])
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
