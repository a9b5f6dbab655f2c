"""One bounded parser for the numbers, times and search text that clients send.

`int()` alone is not a parser for client input: `str.isdigit()` says yes to `²` (which `int()`
then refuses), `int()` accepts full-width digits, `1_000` and spaces, raises on more than 4,300
digits, and returns values no column, Kafka field or datetime can hold. Every view, form,
webhook and frame handler that reads a number, offset, page, limit or time from a request goes
through here: ASCII digits only, a length bound before any conversion, a range for each kind, and one error
type that names the field and the rule.

`InvalidValue` is a `django.core.exceptions.BadRequest` (so a caller that forgets to catch it
answers 400, never 500) and a `ValueError` (so pydantic validators and `except ValueError`
callers turn it into their own validation error).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import BadRequest

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# The longest integer text accepted: a sign and int64's 19 digits.
MAX_INT_CHARS = 20
MAX_PAGE = 1_000_000
# Unix times outside these are refused: nothing real happens before 1970 or after 2100, and the
# upper bound fits every store a time reaches (ClickHouse DateTime ends in 2106, Python's
# datetime in 9999; PostgreSQL and Kafka's int64 milliseconds reach further).
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
MAX_TIME_CHARS = 40

_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


class InvalidValue(BadRequest, ValueError):
    """A client value refused by a parser: `field` names it, the message states the rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_int(
    raw: Any, *, field: str, minimum: int, maximum: int, default: int | None = None
) -> int:
    """An integer from `minimum` to `maximum`, sent as an int or as ASCII decimal text (an
    optional minus, digits; nothing else). Missing (None or "") is `default`, or refused when
    there is none."""
    rule = f"{field} must be a whole number from {minimum} to {maximum}"
    if raw is None or raw == "":
        if default is None:
            raise InvalidValue(field, f"{field} is required ({rule.partition(' must be ')[2]})")
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidValue(field, rule)
    if isinstance(raw, str):
        if len(raw) > MAX_INT_CHARS or not _INTEGER.fullmatch(raw):
            raise InvalidValue(field, rule)
        raw = int(raw)
    if not minimum <= raw <= maximum:
        raise InvalidValue(field, rule)
    return raw


def parse_offset(raw: Any, *, field: str = "offset", default: int | None = None) -> int:
    """A Kafka offset: 0 to int64's maximum."""
    return parse_int(raw, field=field, minimum=0, maximum=INT64_MAX, default=default)


def parse_partition(raw: Any, *, field: str = "partition", default: int | None = None) -> int:
    """A Kafka partition number: 0 to int32's maximum."""
    return parse_int(raw, field=field, minimum=0, maximum=INT32_MAX, default=default)


def parse_content_length(raw: Any) -> int:
    """A Content-Length header: a number of bytes, 0 when missing."""
    return parse_int(raw, field="Content-Length", minimum=0, maximum=INT64_MAX, default=0)


def parse_partition_or_all(raw: Any, *, field: str = "partition") -> int | None:
    """A partition number, or None for every partition (missing, "" or "all")."""
    return None if raw is None or raw in ("", "all") else parse_partition(raw, field=field)


def parse_page(raw: Any, *, field: str = "page") -> int:
    """A page number of a listing, 1 when missing."""
    return parse_int(raw, field=field, minimum=1, maximum=MAX_PAGE, default=1)


def parse_limit(raw: Any, *, maximum: int, default: int, field: str = "limit") -> int:
    """How many items to return: 1 to `maximum`, `default` when missing."""
    return parse_int(raw, field=field, minimum=1, maximum=maximum, default=default)


def parse_unix_millis(raw: Any, *, field: str) -> int:
    """A Unix time in milliseconds (an int or ASCII digits) between TIME_MIN and TIME_MAX, as
    the int it is (Kafka's timestamps)."""
    low, high = (int(t.timestamp()) * 1000 for t in (TIME_MIN, TIME_MAX))
    return _unix(raw, field=field, low=low, high=high, unit="milliseconds")


def parse_unix_time(raw: Any, *, field: str) -> datetime:
    """A Unix time in seconds (an int or ASCII digits) between TIME_MIN and TIME_MAX, as an
    aware UTC datetime."""
    low, high = (int(t.timestamp()) for t in (TIME_MIN, TIME_MAX))
    return datetime.fromtimestamp(
        _unix(raw, field=field, low=low, high=high, unit="seconds"), tz=UTC
    )


def _unix(raw: Any, *, field: str, low: int, high: int, unit: str) -> int:
    try:
        return parse_int(raw, field=field, minimum=low, maximum=high - 1)
    except InvalidValue:
        raise InvalidValue(
            field, f"{field} must be Unix {unit} from {low} to {high - 1} (1970 to 2099)"
        ) from None


def parse_iso_time(raw: Any, *, field: str, require_zone: bool = True) -> datetime:
    """An ISO 8601 date and time (`Z` or an offset required unless `require_zone` is False, then
    a naive one is returned naive), between TIME_MIN and TIME_MAX."""
    rule = f"{field} must be an ISO 8601 date and time" + (
        " with a time zone (e.g. 2026-01-31T12:00Z)" if require_zone else ""
    )
    if not isinstance(raw, str) or len(raw) > MAX_TIME_CHARS or not raw.isascii():
        raise InvalidValue(field, rule)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidValue(field, rule) from None
    if moment.tzinfo is None and require_zone:
        raise InvalidValue(field, rule)
    if not TIME_MIN <= (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) < TIME_MAX:
        raise InvalidValue(field, f"{field} must be from 1970 to 2099")
    return moment


def parse_text(raw: Any, *, field: str, max_length: int) -> str:
    """Free text from a query or form (a search field), as sent: at most `max_length`
    characters and no NUL (PostgreSQL can neither compare nor store it). Missing is ""."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidValue(field, f"{field} must be text")
    if "\x00" in raw:
        raise InvalidValue(field, f"{field} must not contain NUL characters")
    if len(raw) > max_length:
        raise InvalidValue(field, f"{field} must be at most {max_length} characters")
    return raw
