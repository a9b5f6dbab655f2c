"""The one error model of every surface: a code, a message a model can act on, an HTTP status."""

from __future__ import annotations


class OperationError(Exception):
    code = "operation_failed"
    http_status = 400

    def __init__(self, message: str, *, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class AuthenticationFailed(OperationError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(OperationError):
    code = "permission_denied"
    http_status = 403


class NotFound(OperationError):
    code = "not_found"
    http_status = 404


class UnknownOperation(NotFound):
    """No such operation, or one this key may not call (deliberately indistinguishable)."""

    code = "unknown_operation"


class Conflict(OperationError):
    code = "conflict"
    http_status = 409


class InvalidInput(OperationError):
    code = "invalid_input"
    http_status = 422


class MalformedRequest(OperationError):
    """The request itself cannot be read (not JSON, nested beyond what a parser can take)."""

    code = "malformed_request"
    http_status = 400


class PayloadTooLarge(OperationError):
    code = "payload_too_large"
    http_status = 413


class NotConnected(OperationError):
    """The tenant has not connected the integration this operation needs."""

    code = "integration_not_connected"
    http_status = 409


class RateLimited(OperationError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DependencyUnavailable(OperationError):
    """A service SmarterOS depends on (Vault, Kafka, ClickHouse...) is down; names it."""

    code = "dependency_unavailable"
    http_status = 503


class UpstreamError(OperationError):
    """A third party (Shopify, Meta, n8n, an upstream MCP server) failed or timed out."""

    code = "upstream_error"
    http_status = 502


class OutcomeUnknown(UpstreamError):
    """The request reached the provider and its answer was lost: it may have acted. Retried
    where a retry cannot act twice (an idempotency key, a lookup first); not where it could."""

    code = "outcome_unknown"


class Cancelled(OperationError):
    code = "cancelled"
    http_status = 499
