"""Filters: text on key, value and headers; CEL compiled once, errors reported."""

from __future__ import annotations

import pytest

from telemetry.topics.filters import FilterError, compile_filter

RECORD = {
    "key": "order-17",
    "partition": 1,
    "offset": 5,
    "timestamp": 1,
    "headers": [("event-type", "shopify.webhook.received")],
    "value": {"type": "shopify.webhook.received", "data": {"total": 150, "city": "Lyon"}},
}


def test_text_filter_searches_key_value_and_headers() -> None:
    assert compile_filter(q="ORDER-17").matches(RECORD)
    assert compile_filter(q="lyon").matches(RECORD)
    assert compile_filter(q="header:shopify.webhook").matches(RECORD)
    assert not compile_filter(q="key:lyon").matches(RECORD)
    assert not compile_filter(q="paris").matches(RECORD)


def test_cel_filter() -> None:
    wanted = compile_filter(
        cel_source='value.data.total > 100 && headers["event-type"] == "shopify.webhook.received"'
    )
    assert wanted.matches(RECORD)
    assert not compile_filter(cel_source="value.data.total > 200").matches(RECORD)
    assert compile_filter(cel_source='key.startsWith("order-") && partition == 1').matches(RECORD)


def test_cel_compile_error_names_the_field() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(cel_source="value.data.total >")
    assert caught.value.field == "cel" and "Syntax error" in str(caught.value)


def test_cel_runtime_error_is_no_match_and_reported() -> None:
    f = compile_filter(cel_source="value.data.missing > 1")
    assert not f.matches(RECORD)
    assert f.runtime_errors == 1 and f.last_error


def test_oversized_filters_are_refused() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(q="x" * 501)
    assert caught.value.field == "q"


def test_readme_examples_compile_and_match() -> None:
    record = {
        "key": "gid://shopify/Product/1",
        "partition": 2,
        "offset": 0,
        "timestamp": 1795000000001,
        "headers": [("event-type", "shopify.webhook.received")],
        "value": {
            "type": "whatsapp.message.received",
            "data": {"total": 150, "text": "a refund please", "whatsapp_to": "+15550100"},
        },
    }
    for expression in (
        'value.data.total > 100 && headers["event-type"] == "shopify.webhook.received"',
        'value.type == "whatsapp.message.received" && value.data.text.contains("refund")',
        'key.startsWith("gid://shopify/Product/") && partition == 2',
        "has(value.data.whatsapp_to) && timestamp > 1795000000000",
    ):
        assert compile_filter(cel_source=expression).matches(record), expression
