"""Hypothesis strategies shared by the fuzzers: JSON values, raw bodies, header values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded so the fuzz set stays within a few minutes; no example database, so each run is
# the seeded one (pytest -p no:randomly; hypothesis prints the failing example).
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
json_bodies = json_values.map(lambda value: json.dumps(value).encode())
raw_bodies = st.binary(max_size=3000) | json_bodies
# What an HTTP client can put in a header value: visible ASCII, inner spaces.
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120).map(
    str.strip
)
