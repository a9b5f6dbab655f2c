"""The websocket Origin check: a socket is accepted only from a page of this very site, compared
by scheme, host AND port (Channels' AllowedHostsOriginValidator compares the host alone, so a
page served on another port of the same host could read the operator's socket), or from an
origin listed in CSRF_TRUSTED_ORIGINS (a TLS-terminating proxy's public address)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, ports made explicit; None when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def origin_allowed(scope: dict[str, Any]) -> bool:
    """True when the handshake's Origin is this site (the scheme of the socket, its Host header
    with the port) or a trusted origin; a missing or unparsable Origin is refused."""
    headers = {name.lower(): value for name, value in scope.get("headers") or []}
    origin = _origin(headers.get(b"origin", b"").decode("latin-1"))
    if origin is None:
        return False
    if any(_origin(trusted) == origin for trusted in settings.CSRF_TRUSTED_ORIGINS):
        return True
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    own = _origin(f"{scheme}://{headers.get(b'host', b'').decode('latin-1')}")
    return own == origin and validate_host(origin[1], settings.ALLOWED_HOSTS)


class SameOriginValidator:
    """ASGI middleware: refuses the websocket handshake (403) from any other origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
