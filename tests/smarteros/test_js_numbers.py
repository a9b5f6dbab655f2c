"""Integers a JavaScript consumer would round leave the platform as strings."""

from __future__ import annotations

import json

from smarteros.js_numbers import JS_MAX_SAFE_INTEGER, js_safe
from tests.fixtures.deliveries import shopify_order


def test_a_shopify_order_id_beyond_2_53_becomes_its_exact_string() -> None:
    order = shopify_order()  # id 820982911946154508, as in Shopify's orders/create reference
    safe = js_safe({"event": {"data": {"payload": order}}})
    payload = safe["event"]["data"]["payload"]
    assert payload["id"] == "820982911946154508"
    assert payload["line_items"][0]["id"] == "866550311766439020"
    # What is not too large is left as it was.
    assert payload["line_items"][0]["quantity"] == 1
    assert payload["total_price"] == "403.00"
    # A JavaScript reader keeps a double (it prints 820982911946154500): the bug prevented.
    assert int(float(820982911946154508)) != 820982911946154508


def test_the_limit_is_javascript_s_max_safe_integer_both_signs() -> None:
    assert JS_MAX_SAFE_INTEGER == 9007199254740991
    assert js_safe([JS_MAX_SAFE_INTEGER, -JS_MAX_SAFE_INTEGER]) == [
        JS_MAX_SAFE_INTEGER,
        -JS_MAX_SAFE_INTEGER,
    ]
    assert js_safe([JS_MAX_SAFE_INTEGER + 1, -JS_MAX_SAFE_INTEGER - 1]) == [
        "9007199254740992",
        "-9007199254740992",
    ]


def test_booleans_floats_and_strings_are_untouched_and_nothing_is_copied_needlessly() -> None:
    value = {"ok": True, "n": 1.5e300, "s": "820982911946154508", "l": [1, None, {"x": 2}]}
    assert js_safe(value) is value
    assert js_safe(True) is True
    changed = js_safe({"keep": value["l"], "big": 2**60})
    assert changed["keep"] is value["l"]
    assert json.loads(json.dumps(changed)) == {"keep": [1, None, {"x": 2}], "big": str(2**60)}
