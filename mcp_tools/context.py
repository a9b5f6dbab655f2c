"""What an operation sees of its caller: the tenant, the key, the surface, progress, cancellation,
and the client's own model where it offers sampling."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smarteros.errors import Cancelled

if TYPE_CHECKING:
    from tenants.models import ApiKey, Tenant

ProgressFn = Callable[[float, float | None, str | None], None]
# Ask the MCP client's own model to write (MCP sampling): (system, messages, max_tokens) ->
# (text, model), or None if the connection cannot carry the request. Set only when the client
# declared the sampling capability.
SampleFn = Callable[[str, list[dict[str, str]], int], tuple[str, str] | None]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key of one tenant."""

    tenant: Tenant
    api_key: ApiKey

    def scopes(self) -> list[str]:
        return list(self.api_key.scopes or [])


@dataclass
class OperationContext:
    principal: Principal
    surface: str  # "mcp-stdio", "mcp-http" or "rest"
    trace_id: str
    progress: ProgressFn | None = None
    sample: SampleFn | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    tokens_in: int = 0
    tokens_out: int = 0
    model: str = ""
    session_id: str = ""

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send a progress notification where the surface supports it (MCP with a token)."""
        if self.progress is not None:
            self.progress(done, total, message)

    def raise_if_cancelled(self) -> None:
        """Long operations call this between steps so a client's cancellation stops them."""
        if self.cancel_event.is_set():
            raise Cancelled("the request was cancelled by the client")
