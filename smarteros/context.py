"""Request-scoped context (tenant, trace id) carried in ContextVars, safe under ASGI and threads."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from contextvars import ContextVar

current_tenant_slug: ContextVar[str | None] = ContextVar("current_tenant_slug", default=None)
current_trace_id: ContextVar[str | None] = ContextVar("current_trace_id", default=None)


def new_trace_id() -> str:
    """A W3C-compatible 32-hex-digit trace id."""
    return secrets.token_hex(16)


@contextlib.contextmanager
def bound(*, tenant_slug: str | None = None, trace_id: str | None = None) -> Iterator[None]:
    """Bind tenant and trace id for log lines and telemetry within the block."""
    tokens = []
    if tenant_slug is not None:
        tokens.append((current_tenant_slug, current_tenant_slug.set(tenant_slug)))
    if trace_id is not None:
        tokens.append((current_trace_id, current_trace_id.set(trace_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
