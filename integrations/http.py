"""HTTP calls to third parties, with one mapping of their failures to UpstreamError."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from mcp_tools.errors import NotFound, OperationError, UpstreamError

DEFAULT_TIMEOUT = 15.0

_client: tuple[int, httpx.Client] | None = None


def _shared_client() -> httpx.Client:
    """One client per process: it keeps connections to the providers open and builds its TLS
    context once (a client per request spends milliseconds on each). A forked child (Celery's
    pool) makes its own rather than sharing the parent's sockets."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), httpx.Client(timeout=DEFAULT_TIMEOUT))
    return _client[1]


def request_response(provider: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request and return the response whatever its status, for callers that read a
    provider's own answers (a 429's Retry-After); no answer at all is an UpstreamError."""
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    try:
        return _shared_client().request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise UpstreamError(f"{provider} did not answer within {kwargs['timeout']}s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{provider} is unreachable: {type(exc).__name__}") from None


ErrorMap = Callable[[httpx.Response], OperationError | None]


def request_json(
    provider: str, method: str, url: str, *, map_error: ErrorMap | None = None, **kwargs: Any
) -> Any:
    """Send a request and return its JSON body; any failure names the provider and the status.
    `map_error` turns a provider's documented error answer into its own error first."""
    response = request_response(provider, method, url, **kwargs)
    return response_json(provider, url, response, map_error=map_error)


def response_json(
    provider: str, url: str, response: httpx.Response, *, map_error: ErrorMap | None = None
) -> Any:
    """The response's JSON body; a 404 is NotFound, another failure an UpstreamError (unless
    `map_error` knows the provider's answer)."""
    if response.status_code >= 400 and map_error is not None:
        mapped = map_error(response)
        if mapped is not None:
            raise mapped
    if response.status_code == 404:
        # The caller named something the provider does not have (an execution, a product):
        # the caller's mistake to correct, not the provider failing.
        raise NotFound(f"{provider} has no {urlsplit(url).path}: {response.text[:200]}")
    if response.status_code >= 400:
        raise UpstreamError(
            f"{provider} answered HTTP {response.status_code}: {response.text[:300]}"
        )
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"{provider} answered with a body that is not JSON") from None


def stream_lines(provider: str, url: str, *, timeout: float = 60.0) -> Iterator[str]:
    """The lines of a (large) download, read as they arrive: the body is never held whole."""
    try:
        with _shared_client().stream("GET", url, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                response_json(provider, url, response)  # raises, naming the status
            yield from response.iter_lines()
    except httpx.TimeoutException:
        raise UpstreamError(f"{provider} did not answer within {timeout}s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{provider} is unreachable: {type(exc).__name__}") from None
