"""Outside effects: performed after commit, once per key, retried, failed with the reason, and
never repeated at the provider when their record is what failed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from effects.models import Effect
from effects.services import effect_perform, effect_record, effects_requeue_lost
from tenants.scope import dangerously_unscoped, tenant_scope

pytestmark = pytest.mark.django_db(transaction=True)

ORDER = {
    "line_items": [{"variant_id": "gid://shopify/ProductVariant/5000", "quantity": 2}],
    "email": "c@example.com",
}


@pytest.fixture
def fast_retries(settings: Any) -> None:
    settings.EFFECT_RETRY_DELAYS = [0.1, 0.1]


@contextlib.contextmanager
def recording_done_fails() -> Iterator[None]:
    """PostgreSQL refuses to mark any effect done (as a full disk or a lost connection would)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_done() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_done BEFORE UPDATE ON effects_effect FOR EACH ROW "
            "WHEN (NEW.state = 'done') EXECUTE FUNCTION refuse_done()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_done ON effects_effect")
            cursor.execute("DROP FUNCTION refuse_done()")


class Collecting(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


def test_an_order_whose_record_fails_is_not_created_twice_on_the_clients_retry(
    make_tenant: Any, connect: Any, saas: Any, settings: Any
) -> None:
    # Long enough that the retry enqueued by the first call (performed at once: the suite runs
    # tasks inline) finds the effect not yet due, however slow the machine.
    settings.EFFECT_RETRY_DELAYS = [2.0, 2.0]
    tk = make_tenant("ordershop")
    connect(tk.tenant, "shopify", saas.url)
    args = {**ORDER, "idempotency_key": "order-1"}
    with recording_done_fails():
        first = call(tk, "shopify_create_order", args)
    # Shopify created the order; SmarterOS could not record it, and says so.
    assert first.ok, first.error
    assert first.output["effect"]["state"] == "pending"
    assert "recording failed" in first.output["effect"]["last_error"]
    assert first.output["order_id"] == ""
    assert len(saas.state.applied_of("shopify.OrderCreate")) == 1
    time.sleep(2.1)  # the retry's backoff
    retry = call(tk, "shopify_create_order", args)
    assert retry.ok, retry.error
    assert retry.output["effect"]["state"] == "done"
    assert retry.output["order_id"] == "gid://shopify/Order/777"
    # The retry found the order by its key's tag: no second order.
    assert len(saas.state.applied_of("shopify.OrderCreate")) == 1
    assert retry.output["effect"]["result"]["found_existing"] is True
    again = call(tk, "shopify_create_order", args)
    assert again.output == {**retry.output, "effect": again.output["effect"]}
    # A look-up and the create, then the retry's look-up; the settled effect asks nothing.
    assert len([r for r in saas.state.requests if "graphql" in r[1]]) == 3
    # The same key for another order is refused, naming the field.
    other = call(tk, "shopify_create_order", {**args, "note": "different"})
    assert other.error is not None and other.error.code == "conflict"
    assert "key" in other.error.message
    with dangerously_unscoped():
        assert Effect.objects.filter(tenant=tk.tenant).count() == 1


def test_a_send_that_keeps_failing_is_retried_then_failed_with_the_reason(
    make_tenant: Any, connect: Any, saas: Any, fast_retries: None
) -> None:
    tk = make_tenant("sendshop")
    connect(tk.tenant, "whatsapp", saas.url)
    saas.state.unavailable = 10
    sent = call(tk, "whatsapp_send_message", {"to": "+14155550100", "text": "hello"})
    assert sent.ok and sent.output["effect"]["state"] == "pending"
    effect_id = sent.output["effect"]["effect_id"]
    for _ in range(2):  # the retries, as the Celery task schedules them
        time.sleep(0.15)
        effect_perform(effect_id=effect_id, tenant_id=tk.tenant.pk)
    state = call(tk, "agent_get_effect", {"effect_id": effect_id}).output
    assert state["state"] == "failed" and state["attempts"] == 3
    assert "WhatsApp Cloud API answered HTTP 503" in state["last_error"]
    assert saas.state.applied_of("whatsapp") == []
    # An operator retries it once WhatsApp is back: sent once.
    from effects.services import effect_retry

    saas.state.unavailable = 0
    with tenant_scope(tk.tenant.pk):
        assert effect_retry(effect=Effect.objects.get(pk=effect_id))
    state = call(tk, "agent_get_effect", {"effect_id": effect_id}).output
    assert state["state"] == "done"
    assert [body["text"]["body"] for _, body in saas.state.applied_of("whatsapp")] == ["hello"]
    missing = call(tk, "agent_get_effect", {"effect_id": effect_id + 1000})
    assert missing.error is not None and "effect_id" in missing.error.message


def test_an_effect_whose_enqueue_was_lost_is_enqueued_again(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    tk = make_tenant("lostshop")
    connect(tk.tenant, "n8n", saas.url)
    with tenant_scope(tk.tenant.pk):
        # Recorded and committed, but nothing enqueued: as if the process died right after commit.
        effect = effect_record(
            tenant=tk.tenant,
            kind="n8n.trigger_workflow",
            key="event-1",
            payload={"webhook_path": "order-created", "body": {"n": 1}},
            inline=True,
        )
    assert saas.state.applied_of("n8n") == []
    assert effects_requeue_lost() == 0  # within its grace period: a worker may be on it
    assert effects_requeue_lost(older_than=timedelta(0)) == 1
    applied = saas.state.applied_of("n8n")
    assert [key for key, _ in applied] == [effect.idempotency_key]
    assert applied[0][1]["path"] == "order-created"
    with dangerously_unscoped():
        assert Effect.objects.get(pk=effect.pk).state == Effect.State.DONE
    assert effects_requeue_lost(older_than=timedelta(0)) == 0
    # Recorded again with the same key: the first record, with its times (a repeated
    # idempotent call answers what the first one did).
    with tenant_scope(tk.tenant.pk):
        again = effect_record(
            tenant=tk.tenant,
            kind="n8n.trigger_workflow",
            key="event-1",
            payload={"webhook_path": "order-created", "body": {"n": 1}},
            inline=True,
        )
    assert again.pk == effect.pk and again.created_at is not None and again.done_at is not None


def test_an_effect_built_from_its_row_is_the_one_the_orm_reads(make_tenant: Any) -> None:
    tenant = make_tenant("wholeshop").tenant
    payload = {"webhook_path": "order-created", "body": {"n": 1}}
    with tenant_scope(tenant.pk):
        recorded = effect_record(
            tenant=tenant, kind="n8n.trigger_workflow", key="k", payload=payload, inline=True
        )
        again = effect_record(
            tenant=tenant, kind="n8n.trigger_workflow", key="k", payload=payload, inline=True
        )
        read = Effect.objects.get(pk=recorded.pk)
    whole = {f.attname: getattr(read, f.attname) for f in Effect._meta.concrete_fields}
    for built in (recorded, again):  # from the INSERT's RETURNING, then from the SELECT
        assert {name: getattr(built, name) for name in whole} == whole


@contextlib.contextmanager
def celery_broker_unreachable() -> Iterator[list[logging.LogRecord]]:
    """Celery's broker at an address nobody listens on, tasks sent to it rather than run inline
    (as the suite runs them); yields the warnings effects.services logs meanwhile."""
    from smarteros.celery import app
    from tests.processes import free_port

    broker_url, eager = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    app.conf.task_always_eager = False
    app._pool = app.amqp._producer_pool = None  # the next enqueue connects to the address above
    # Its own handler: an earlier test's worker may have reconfigured logging under caplog.
    said: list[logging.LogRecord] = []
    logger = logging.getLogger("effects.services")
    handler = Collecting(said)
    logger.addHandler(handler)
    disabled, logger.disabled = logger.disabled, False
    try:
        yield said
    finally:
        app.conf.broker_url, app.conf.task_always_eager = broker_url, eager
        app._pool = app.amqp._producer_pool = None
        logger.removeHandler(handler)
        logger.disabled = disabled


def _unreachable(said: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in said if "Celery's broker is unreachable" in r.getMessage()]


def test_effects_recorded_while_celerys_broker_is_down_stay_pending_and_say_so(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    tk = make_tenant("brokerless")
    connect(tk.tenant, "n8n", saas.url)
    with celery_broker_unreachable() as said, tenant_scope(tk.tenant.pk):
        effect = effect_record(
            tenant=tk.tenant,
            kind="n8n.trigger_workflow",
            key="event-while-broker-down",
            payload={"webhook_path": "order-created", "body": {"n": 1}},
        )
    # The commit stood and the effect waits: one clear line, no traceback.
    [warning] = _unreachable(said)
    assert "1 effects stay pending" in warning
    assert all(r.exc_info is None for r in said)
    with dangerously_unscoped():
        assert Effect.objects.get(pk=effect.pk).state == Effect.State.PENDING
    assert effects_requeue_lost(older_than=timedelta(0)) == 1
    assert [key for key, _ in saas.state.applied_of("n8n")] == [effect.idempotency_key]


def test_a_send_to_retry_while_celerys_broker_is_down_answers_pending_not_an_error(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    """Found by the soak: WhatsApp asked for a retry while Redis was down, and the operation,
    whose message was recorded and committed, answered "internal error" (a client would retry
    it and send twice)."""
    tk = make_tenant("brokerlesssend")
    connect(tk.tenant, "whatsapp", saas.url)
    saas.state.whatsapp.fail_next(130429)
    with celery_broker_unreachable() as said:
        result = call(tk, "whatsapp_send_message", {"to": "+14155550100", "text": "hello"})
    assert result.ok, result.error
    assert result.output["effect"]["state"] == "pending"
    assert len(_unreachable(said)) == 1


def test_a_send_whose_answer_is_lost_is_not_sent_again(
    make_tenant: Any, connect: Any, saas: Any, fast_retries: None
) -> None:
    """Meta documents no idempotency for sends: after it got the request and the answer was
    lost, a retry could send the message twice; the effect fails at once, saying what to do."""
    tk = make_tenant("lostanswer")
    connect(tk.tenant, "whatsapp", saas.url)
    saas.state.whatsapp.lose_answers_next = 1
    sent = call(tk, "whatsapp_send_message", {"to": "+14155550100", "text": "hello"})
    assert sent.ok and sent.output["effect"]["state"] == "failed", sent  # isError on MCP
    assert sent.output["effect"]["last_error"].startswith("outcome_unknown:")
    with dangerously_unscoped():
        effect = Effect.objects.get(tenant=tk.tenant)
    assert effect.state == Effect.State.FAILED and effect.attempts == 1
    assert effect.last_error.startswith("outcome_unknown: WhatsApp Cloud API got the request")
    assert "not retried" in effect.last_error and "check whether it did" in effect.last_error
    assert effects_requeue_lost(older_than=timedelta(0)) == 0  # nothing left to retry by itself
    assert [body["text"]["body"] for _, body in saas.state.applied_of("whatsapp")] == ["hello"]
