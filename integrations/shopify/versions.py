"""The Admin API versions SmarterOS speaks, and what changed between them that the client
must follow. Shopify releases a version each quarter and supports each for twelve months."""

from __future__ import annotations

# Oldest first. 2026-10 is the current stable release; 2027-01 is the release candidate.
# A version leaves this list when Shopify stops supporting it.
SUPPORTED_API_VERSIONS: tuple[str, ...] = ("2026-01", "2026-04", "2026-07", "2026-10", "2027-01")
DEFAULT_API_VERSION = "2026-10"

# From 2026-04 inventorySetQuantities takes changeFromQuantity on each quantity (null opts out
# of the compare-and-set check) and requires @idempotent(key:); ignoreCompareQuantity is gone.
CHANGE_FROM_QUANTITY_SINCE = "2026-04"


def api_version_check(value: object) -> str:
    """The version to use for a connection's `api_version` setting (empty: the default);
    ValueError naming the setting and the supported versions otherwise."""
    if value is None or value == "":
        return DEFAULT_API_VERSION
    version = str(value).strip()
    if version not in SUPPORTED_API_VERSIONS:
        raise ValueError(
            f"api_version: {version!r} is not a supported Shopify Admin API version; "
            f"use one of {', '.join(SUPPORTED_API_VERSIONS)} (default {DEFAULT_API_VERSION})"
        )
    return version


def uses_change_from_quantity(version: str) -> bool:
    """Whether inventorySetQuantities takes the 2026-04 shape at `version`."""
    return version >= CHANGE_FROM_QUANTITY_SINCE  # YYYY-MM strings sort as dates
