"""Request-scoped context (tenant, trace id) carried in ContextVars, safe under ASGI and threads."""

from __future__ import annotations

import secrets
from contextvars import ContextVar, Token

current_tenant_slug: ContextVar[str | None] = ContextVar("current_tenant_slug", default=None)
current_trace_id: ContextVar[str | None] = ContextVar("current_trace_id", default=None)


def new_trace_id() -> str:
    """A W3C-compatible 32-hex-digit trace id."""
    return secrets.token_hex(16)


class bound:  # lower-case: used like the function it replaced, `with bound(...):`
    """Bind tenant and trace id for log lines and telemetry within the block.

    A class rather than a generator-based context manager: consumers enter it once per event."""

    __slots__ = ("_tenant_slug", "_tokens", "_trace_id")

    def __init__(self, *, tenant_slug: str | None = None, trace_id: str | None = None) -> None:
        self._tenant_slug = tenant_slug
        self._trace_id = trace_id
        self._tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []

    def __enter__(self) -> None:
        if self._tenant_slug is not None:
            self._tokens.append((current_tenant_slug, current_tenant_slug.set(self._tenant_slug)))
        if self._trace_id is not None:
            self._tokens.append((current_trace_id, current_trace_id.set(self._trace_id)))

    def __exit__(self, *exc: object) -> None:
        while self._tokens:
            var, token = self._tokens.pop()
            var.reset(token)
