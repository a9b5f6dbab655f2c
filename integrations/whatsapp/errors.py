"""Meta's error answers, as errors that say what happened and what to do.

The Cloud API answers `{"error": {"code", "message", "error_data": {"details"}, ...}}`; Meta
advises building on `code` and `details` (WhatsApp error codes reference). Each code maps to an
error class whose kind decides what the effects machinery does with a failed send: an
UpstreamError subclass may pass and is retried (a rate limit after its `retry_after`); any other
OperationError is permanent and is not retried. A code not listed keeps Meta's message and code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smarteros.errors import InvalidInput, OperationError, UpstreamError


@dataclass(frozen=True)
class MetaError:
    """The `error` object of a Graph API answer (or an `errors[]` entry of a status webhook)."""

    code: int
    message: str
    details: str = ""
    title: str = ""
    fbtrace_id: str = ""
    http_status: int = 0
    transient: bool = False

    @classmethod
    def of(cls, error: Any, *, http_status: int = 0) -> MetaError:
        error = error if isinstance(error, dict) else {}
        data = error.get("error_data")
        details = data.get("details", "") if isinstance(data, dict) else ""
        try:
            code = int(error.get("code") or 0)
        except (TypeError, ValueError):
            code = 0
        return cls(
            code=code,
            message=str(error.get("message") or ""),
            details=str(details or ""),
            title=str(error.get("title") or ""),
            fbtrace_id=str(error.get("fbtrace_id") or ""),
            http_status=http_status,
            transient=bool(error.get("is_transient")),
        )

    def detail(self) -> dict[str, object]:
        out: dict[str, object] = {"meta_code": self.code, "meta_message": self.message}
        if self.details:
            out["meta_details"] = self.details
        if self.fbtrace_id:
            out["fbtrace_id"] = self.fbtrace_id
        return out

    def said(self) -> str:
        """Meta's own words, for the end of a message."""
        text = self.details or self.message or self.title
        return f" (Meta {self.code}: {text})" if text else f" (Meta {self.code})"


class OutsideServiceWindow(OperationError):
    """131047: the customer has not written in the last 24 hours."""

    code = "outside_service_window"
    http_status = 409


class WhatsAppRateLimited(UpstreamError):
    """130429, 131056, 4, 80007: a throughput limit; the send is retried after `retry_after`."""

    code = "upstream_rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, details: list[dict[str, object]]):
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Undeliverable(OperationError):
    """131026 and the like: WhatsApp cannot deliver to this recipient."""

    code = "undeliverable"
    http_status = 422


class WhatsAppInvalidParameter(InvalidInput):
    """100, 131008, 131009, 131051, 131053, 132xxx: the request (or template) is wrong."""


class WhatsAppAuthFailed(OperationError):
    """190 and the permission codes: the stored access token no longer works."""

    code = "integration_auth_failed"
    http_status = 409


class WhatsAppAccountBlocked(OperationError):
    """368, 131031, 131042, 131048: the business account cannot send until fixed at Meta."""

    code = "whatsapp_account_restricted"
    http_status = 409


class WhatsAppRejected(OperationError):
    """A code this mapping does not know, which Meta does not call transient."""

    code = "whatsapp_error"
    http_status = 502


class WhatsAppUnavailable(UpstreamError):
    """1, 2, 131000, 131016, or an unknown transient code: Meta's side; retried."""


# Seconds to wait after each rate limit before the send is tried again. Meta sends no
# Retry-After: the throughput limit (130429) clears within seconds, the pair limit (131056)
# allows about one message every 6 seconds to one user, the app limits (4, 80007) are hourly.
RATE_LIMIT_RETRY_AFTER = {130429: 10, 131056: 6, 4: 60, 80007: 60}

_WHAT_TO_DO: dict[int, tuple[type[OperationError], str]] = {
    131047: (
        OutsideServiceWindow,
        "outside the 24-hour customer service window (the customer last wrote more than 24 "
        "hours ago): send a template instead, with whatsapp_send_template",
    ),
    131026: (
        Undeliverable,
        "message undeliverable: the number may not be on WhatsApp, or its owner has not "
        "accepted the current terms or uses an old WhatsApp; ask them by other means",
    ),
    133010: (
        Undeliverable,
        "the business phone number is not registered with the Cloud API; register it in "
        "WhatsApp Manager",
    ),
    131021: (
        WhatsAppInvalidParameter,
        "to: the recipient cannot be the business number itself",
    ),
    131051: (
        WhatsAppInvalidParameter,
        "type: WhatsApp does not support this message type",
    ),
    131053: (
        WhatsAppInvalidParameter,
        "the media could not be uploaded or downloaded; check its link, type and size",
    ),
    131008: (WhatsAppInvalidParameter, "a required parameter is missing"),
    131009: (WhatsAppInvalidParameter, "a parameter value is not valid"),
    132000: (
        WhatsAppInvalidParameter,
        "components: the number of parameters does not match the template's placeholders",
    ),
    132001: (
        WhatsAppInvalidParameter,
        "template: no approved template of this name in this language; check both in "
        "WhatsApp Manager",
    ),
    132005: (WhatsAppInvalidParameter, "components: the filled-in template text is too long"),
    132007: (
        WhatsAppInvalidParameter,
        "components: the parameters break the template's format or WhatsApp's content policy",
    ),
    132012: (
        WhatsAppInvalidParameter,
        "components: a parameter has the wrong type or format for the template",
    ),
    132015: (
        WhatsAppInvalidParameter,
        "template: the template is paused for low quality; edit it or use another",
    ),
    132016: (
        WhatsAppInvalidParameter,
        "template: the template is disabled for low quality; use another",
    ),
    190: (
        WhatsAppAuthFailed,
        "the WhatsApp access token has expired or was revoked: reconnect WhatsApp with a new "
        "token (a system user's permanent token does not expire)",
    ),
    0: (
        WhatsAppAuthFailed,
        "Meta could not authenticate the access token: reconnect WhatsApp with a new token",
    ),
    10: (
        WhatsAppAuthFailed,
        "the access token lacks the whatsapp_business_messaging permission: reconnect "
        "WhatsApp with a token that has it",
    ),
    368: (
        WhatsAppAccountBlocked,
        "the business account is temporarily blocked for a policy violation; see WhatsApp Manager",
    ),
    131031: (
        WhatsAppAccountBlocked,
        "the business account is locked; see WhatsApp Manager",
    ),
    131042: (
        WhatsAppAccountBlocked,
        "a payment problem on the business account; fix its payment method at Meta",
    ),
    131048: (
        WhatsAppAccountBlocked,
        "too many of this number's messages were blocked or reported as spam; sending is "
        "limited until its quality rating recovers",
    ),
}

_RATE_LIMITED = {
    130429: "the Cloud API's message throughput for this number is reached",
    131056: "too many messages to this customer in a short time (pair rate limit)",
    4: "the app's API call limit is reached",
    80007: "the WhatsApp Business Account's API call limit is reached",
}

_META_SIDE = {1, 2, 131000, 131016}


def whatsapp_error(meta: MetaError) -> OperationError:
    """The error a caller sees for Meta's `meta`: what it means and what to do, with Meta's
    code, message and details in `details`."""
    details = [meta.detail()]
    if meta.code in _RATE_LIMITED:
        delay = RATE_LIMIT_RETRY_AFTER[meta.code]
        return WhatsAppRateLimited(
            f"rate limited: {_RATE_LIMITED[meta.code]}; retry after {delay}s{meta.said()}",
            retry_after=delay,
            details=details,
        )
    if meta.code == 100:
        parameter = meta.details or meta.message or "a parameter"
        return WhatsAppInvalidParameter(
            f"invalid parameter: {parameter} (Meta 100)", details=details
        )
    if meta.code in _WHAT_TO_DO:
        kind, advice = _WHAT_TO_DO[meta.code]
        return kind(advice + meta.said(), details=details)
    if 200 <= meta.code <= 299:
        return WhatsAppAuthFailed(
            "the access token lacks a permission this call needs: reconnect WhatsApp with a "
            "token that has it" + meta.said(),
            details=details,
        )
    if meta.code in _META_SIDE or meta.transient or meta.http_status >= 500:
        answered = f" answered HTTP {meta.http_status}" if meta.http_status else ""
        return WhatsAppUnavailable(
            f"WhatsApp Cloud API{answered}: a failure on Meta's side; the send is retried"
            + meta.said(),
            details=details,
        )
    return WhatsAppRejected(
        f"WhatsApp Cloud API refused the request: {meta.message or 'no message'} "
        f"(Meta {meta.code}{': ' + meta.details if meta.details else ''})",
        details=details,
    )


def whatsapp_error_advice(code: int) -> str:
    """What an error code of a status webhook means, in a line (empty if not known)."""
    if code in _RATE_LIMITED:
        return f"rate limited: {_RATE_LIMITED[code]}"
    if code == 100:
        return "invalid parameter"
    known = _WHAT_TO_DO.get(code)
    return known[1] if known else ""
