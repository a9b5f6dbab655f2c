"""What an LLM provider's failures mean for the caller, and whether waiting can help.

Effects retry what may pass (UpstreamError and anything carrying `retry_after`) and fail at once
on the rest; see effects/services.py.
"""

from __future__ import annotations

from smarteros.errors import OperationError, RateLimited, UpstreamError


class LlmCredentialsRejected(OperationError):
    """401/403: the tenant's LLM API key is wrong or revoked; an operator must replace it."""

    code = "llm_credentials_rejected"
    http_status = 502


class LlmRateLimited(RateLimited):
    """429: the provider's rate limit for this key; retry after the seconds it says."""

    code = "llm_rate_limited"


class LlmBudgetExhausted(RateLimited):
    """The tenant's daily token budget is spent; it renews at 00:00 UTC."""

    code = "llm_budget_exhausted"


class LlmOverloaded(UpstreamError):
    """529 (Anthropic) or 503: the provider is short of capacity for everyone; retry later."""

    code = "llm_overloaded"
    http_status = 503

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LlmInvalidRequest(OperationError):
    """400/404/413/422: the provider refused the request itself (an unknown model, a prompt too
    long); repeating it cannot help."""

    code = "llm_invalid_request"
    http_status = 502


class LlmEmptyReply(OperationError):
    """The model answered without any text: its token budget spent first (thinking counts
    against it), a refusal, or a stop with nothing said. Sending nothing and calling the reply
    done would hide it; repeating the same request gives the same answer."""

    code = "llm_empty_reply"
    http_status = 502
