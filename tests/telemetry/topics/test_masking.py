"""Masking: schema-marked secrets, credential-looking values, contact data unless opted out."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from smarteros.events.schemas import EventData, event_type
from telemetry.topics.masking import MASK, Masker, secret_fields


@event_type("test.payment.captured")
class PaymentCaptured(EventData):
    amount: int
    card_token: str = Field(json_schema_extra={"x-secret": True})
    gateway_password: SecretStr | None = None
    note: str = ""


def test_schema_marks_secret_fields() -> None:
    assert secret_fields("test.payment.captured") == {"card_token", "gateway_password"}
    assert secret_fields("no.such.type") == frozenset()


def test_envelope_data_secret_fields_are_masked_by_schema() -> None:
    value = {
        "type": "test.payment.captured",
        "data": {"amount": 120, "card_token": "tok-4242-visible-otherwise", "note": "hi"},
    }
    masked: Any = Masker(tenant_slug="acme").envelope_value(value)
    assert masked["data"]["card_token"] == MASK
    assert masked["data"]["amount"] == 120 and masked["data"]["note"] == "hi"


def test_credential_looking_values_and_names_are_masked_anywhere() -> None:
    masker = Masker(tenant_slug="acme")
    value = {
        "type": "x",
        "data": {
            "message": "use sos_live_abcdefghijklmnop please",
            "nested": [{"access_token": "plain-words"}, {"auth": "Bearer abcdefghijklmnopqrstu"}],
            "tokens_in": 120,
            "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
        },
    }
    masked: Any = masker.envelope_value(value)
    text = repr(masked)
    for secret in ("sos_live_abcdefghijklmnop", "plain-words", "abcdefghijklmnopqrstu", "eyJhbGci"):
        assert secret not in text
    assert masked["data"]["tokens_in"] == 120  # a count named like a token stays
    assert masker.headers([("Authorization", "x"), ("trace", "sk-abcdefghijklmnopqrstuv")]) == [
        ("Authorization", MASK),
        ("trace", MASK),
    ]


def test_contact_data_is_masked_unless_the_tenant_opts_out() -> None:
    masked = Masker(tenant_slug="acme").text("from +14155550123, jane@example.com")
    assert "+14155550123" not in masked and "jane@" not in masked
    shown = Masker(tenant_slug="acme", personal=False)
    assert (
        shown.text("from +14155550123, jane@example.com") == "from +14155550123, jane@example.com"
    )
    # Card numbers and credentials stay masked for a tenant that opts out.
    assert shown.text("4242424242424242 sk_live_4eC39HqLyjWDarjtT1zdp7dc") == "••••••4242 ••••••"


def test_secret_names_mask_values_of_any_type_and_keys_are_scanned() -> None:
    masked: Any = Masker(tenant_slug="acme").json(
        {
            "password": 1234,
            "api_key": {"live": "x"},
            "secrets": ["a"],
            "has_password": True,
            "tokens_in": 120,
            "session_id": "s-1",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc": 1,
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a": 2,
        }
    )
    assert masked["password"] == masked["api_key"] == masked["secrets"] == MASK
    assert masked["has_password"] is True and masked["tokens_in"] == 120
    assert masked["session_id"] == "s-1"
    assert masked[MASK] == 1 and masked[MASK + "#"] == 2  # two masked keys both kept


def test_ids_counts_and_times_that_look_numeric_stay_readable() -> None:
    masker = Masker(tenant_slug="acme")
    kept = {
        "id": "gid://shopify/Order/4242424242424242",
        "at": "1733390000000",
        "order_number": "5551234567",
        "session_id": "sess-1",
        "tokens_in": 1200,
        "webhook_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    assert masker.json(kept) == kept
