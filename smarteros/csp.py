"""Content-Security-Policy for the operators' console: scripts, styles and connections from this
origin only (every front-end asset is served from static), no inline code, no framing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

# What a form target may add to form-action: a scheme and a host[:port], nothing that could end
# the directive (`;`, `,`, spaces) or widen it (`*`).
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# Schemes that run or embed content instead of naming an app: never a form's target.
_NEVER = frozenset({"javascript", "data", "blob", "filesystem", "vbscript"})
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def form_source(url: str) -> str | None:
    """The CSP source that lets a form's answer redirect to `url`: its origin for http(s), its
    scheme for an app's custom scheme; None if it cannot be written safely."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme) or scheme in _NEVER:
        return None
    if scheme not in ("http", "https"):
        return f"{scheme}:"
    return f"{scheme}://{parts.netloc}" if _HOST.match(parts.netloc) else None


def console_csp(*, form_targets: Iterable[str] = ()) -> str:
    """The console's policy; `form_targets` are URLs a form's answer may redirect to (browsers
    apply form-action to that redirect too: the OAuth consent answers with the client's
    redirect URI)."""
    sources = [s for s in (form_source(url) for url in form_targets) if s]
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            " ".join(("form-action 'self'", *sources)),
            "frame-ancestors 'none'",
        )
    )


CONSOLE_CSP = console_csp()
# Served by Django and by the API docs, with their own inline code; not console pages.
EXEMPT_PREFIXES = ("/admin/", "/api/")


class ContentSecurityPolicyMiddleware:
    """Adds CONSOLE_CSP to every HTML page of the console."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.get("Content-Type", "").startswith("text/html")
            and not request.path.startswith(EXEMPT_PREFIXES)
            and "Content-Security-Policy" not in response
        ):
            response["Content-Security-Policy"] = CONSOLE_CSP
        return response
