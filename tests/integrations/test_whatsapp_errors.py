"""Meta's error answers, as a caller and the effects machinery see them: what each means and
what to do, permanent ones failed at once, rate limits retried after their delay. The
stand-in answers Meta's documented error bodies (tests/fixtures/standins/whatsapp.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from effects.models import Effect
from effects.services import _may_pass, effect_perform
from integrations.whatsapp.errors import MetaError, whatsapp_error
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

TO = "+14155550100"


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    tk = make_tenant("metashop")
    connect(tk.tenant, "whatsapp", saas.url)
    return tk


def effect_of(result: Any) -> Effect:
    assert result.ok, result.error
    with dangerously_unscoped():
        return Effect.objects.get(pk=result.output["effect"]["effect_id"])


@pytest.mark.parametrize(
    ("code", "error_code", "says"),
    [
        (131047, "outside_service_window", "send a template"),
        (131026, "undeliverable", "message undeliverable"),
        (190, "integration_auth_failed", "reconnect WhatsApp"),
        (131051, "invalid_input", "type: WhatsApp does not support this message type"),
        (131053, "invalid_input", "media could not be uploaded"),
        (131048, "whatsapp_account_restricted", "spam"),
        (987654, "whatsapp_error", "Meta 987654"),  # not in the mapping: Meta's own words
    ],
)
def test_a_permanent_refusal_fails_the_send_at_once_saying_what_to_do(
    shop: Any, saas: Any, code: int, error_code: str, says: str
) -> None:
    saas.state.whatsapp.fail_next(code, details=None if code != 987654 else "Brand new error")
    effect = effect_of(call(shop, "whatsapp_send_message", {"to": TO, "text": "hello"}))
    assert effect.state == Effect.State.FAILED and effect.attempts == 1  # never retried
    assert effect.last_error.startswith(f"{error_code}: ")
    assert says.lower() in effect.last_error.lower()
    assert f"Meta {code}" in effect.last_error
    assert "502" not in effect.last_error and saas.state.applied_of("whatsapp") == []


def test_outside_the_window_points_to_the_template_that_then_goes_through(
    shop: Any, saas: Any
) -> None:
    saas.state.whatsapp.fail_next(131047)
    effect = effect_of(call(shop, "whatsapp_send_message", {"to": TO, "text": "still there?"}))
    assert "whatsapp_send_template" in effect.last_error
    assert "24 hours" in effect.last_error
    sent = call(
        shop,
        "whatsapp_send_template",
        {"to": TO, "name": "hello_world", "language": "en_US"},
    )
    assert sent.ok and sent.output["effect"]["state"] == "done", sent.output
    [(_, body)] = saas.state.applied_of("whatsapp")
    assert body["type"] == "template" and body["template"]["name"] == "hello_world"


@pytest.mark.parametrize(("code", "delay"), [(130429, 10), (131056, 6)])
def test_a_rate_limit_is_retried_after_its_delay_then_sent_once(
    shop: Any, saas: Any, code: int, delay: int
) -> None:
    saas.state.whatsapp.fail_next(code)
    before = timezone.now()
    effect = effect_of(call(shop, "whatsapp_send_message", {"to": TO, "text": "hello"}))
    assert effect.state == Effect.State.PENDING and effect.attempts == 1
    assert effect.last_error.startswith("upstream_rate_limited: rate limited")
    assert f"retry after {delay}s" in effect.last_error
    # Not due before the delay Meta's limit needs (the configured backoff starts at 2 s).
    assert effect.not_before >= before + timedelta(seconds=delay - 0.5)
    assert effect_perform(effect_id=effect.pk, tenant_id=shop.tenant.pk).status.value == "busy"
    with dangerously_unscoped():
        Effect.objects.filter(pk=effect.pk).update(not_before=timezone.now())
    assert effect_perform(effect_id=effect.pk, tenant_id=shop.tenant.pk).status.value == "done"
    assert len(saas.state.applied_of("whatsapp")) == 1


def test_an_invalid_parameter_names_it(shop: Any, saas: Any) -> None:
    saas.state.whatsapp.fail_next(100, details="Param text['body'] must be at most 4096 characters")
    effect = effect_of(call(shop, "whatsapp_send_message", {"to": TO, "text": "hello"}))
    assert effect.state == Effect.State.FAILED and effect.attempts == 1
    assert effect.last_error == (
        "invalid_input: invalid parameter: Param text['body'] must be at most 4096 characters "
        "(Meta 100)"
    )


def test_metas_side_failing_is_retried(shop: Any, saas: Any) -> None:
    saas.state.whatsapp.fail_next(131000)
    effect = effect_of(call(shop, "whatsapp_send_message", {"to": TO, "text": "hello"}))
    assert effect.state == Effect.State.PENDING
    assert "answered HTTP 500" in effect.last_error and "Meta 131000" in effect.last_error


def test_an_expired_token_fails_the_connection_test_with_reconnect(
    shop: Any, saas: Any, connect: Any
) -> None:
    from integrations.probe import integration_probe
    from integrations.services import integration_connect

    assert "Stand-in Store" in integration_probe(tenant=shop.tenant, provider="whatsapp")
    integration_connect(
        tenant=shop.tenant,
        provider="whatsapp",
        config={"phone_number_id": "106540352242922", "api_base_url": saas.url},
        credentials={"access_token": "EAAexpired"},
    )
    from integrations.whatsapp.errors import WhatsAppAuthFailed

    with pytest.raises(WhatsAppAuthFailed, match="reconnect WhatsApp") as caught:
        integration_probe(tenant=shop.tenant, provider="whatsapp")
    assert caught.value.details[0]["meta_code"] == 190


def test_each_mapped_code_is_permanent_or_retryable_as_meta_documents_it() -> None:
    retryable = {130429, 131056, 4, 80007, 1, 2, 131000, 131016}
    for code in (131047, 131026, 133010, 131021, 131051, 131053, 131008, 131009, 132000,
                 132001, 132005, 132007, 132012, 132015, 132016, 190, 0, 10, 200, 368,
                 131031, 131042, 131048, 100, 555, *retryable):  # fmt: skip
        error = whatsapp_error(MetaError.of({"code": code, "message": "m"}, http_status=400))
        assert _may_pass(error) is (code in retryable), (code, type(error).__name__)
        assert f"Meta {code}" in error.message or code == 100
        assert error.details[0]["meta_code"] == code
    transient = whatsapp_error(MetaError.of({"code": 555, "is_transient": True}, http_status=400))
    assert _may_pass(transient)
