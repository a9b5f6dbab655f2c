"""One ASGI app for web, Channels websockets and (later) MCP, with lifespan handled here.

Django's ASGI handler refuses lifespan events, so this wrapper answers them itself and runs the
start-up/shut-down hooks of the apps mounted beside Django.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

# Import every view now, while the worker starts, rather than in its first request: resolving
# the first URL imports the whole URLconf (seconds on a busy machine), which an operator's
# first click or a load balancer's first probe would otherwise wait for.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018

from smarteros.routing import http_mounts, lifespan_hooks, websocket_app  # noqa: E402

_router = ProtocolTypeRouter({"http": django_app, "websocket": websocket_app})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "http":
        path = scope["path"]
        for prefix, app in http_mounts():
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
    await _router(scope, receive, send)


async def _lifespan(receive: Any, send: Any) -> None:
    started: list[Any] = []
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                for hook in lifespan_hooks():
                    context = hook()
                    await context.__aenter__()
                    started.append(context)
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for context in reversed(started):
                await context.__aexit__(None, None, None)
            await send({"type": "lifespan.shutdown.complete"})
            return
