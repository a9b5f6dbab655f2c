"""What the ASGI app mounts beside Django: websocket routes and lifespan hooks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from smarteros.websocket_origin import SameOriginValidator
from telemetry.topics.consumers import TopicViewerConsumer
from tenants.console.consumers import ProvisioningConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/topics/", TopicViewerConsumer.as_asgi()),
    path("ws/tenants/<slug:slug>/provisioning/", ProvisioningConsumer.as_asgi()),
]

websocket_app = SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))


@functools.cache
def http_mounts() -> tuple[tuple[str, Any], ...]:
    """ASGI apps served beside Django, by path prefix."""
    from mcp_tools.http import mcp_http_app

    return (("/mcp", mcp_http_app),)


def lifespan_hooks() -> list[Callable[[], AbstractAsyncContextManager[Any]]]:
    """Async context managers entered at start-up and left at shut-down."""
    from mcp_tools.http import mcp_http_app
    from telemetry.recording import flushed_at_shutdown

    # The MCP session manager must be running before /mcp can serve a request. Left in reverse
    # order: telemetry is flushed once nothing serves calls any more.
    return [flushed_at_shutdown, mcp_http_app.lifespan]
