"""HTTP calls to third parties through the egress gate, with one mapping of their failures.

Every call goes through `smarteros.infra.egress.egress_client()`: the URL and every address it
resolves to are checked at each connection. What a provider answered is never echoed beyond its
status (an error body could be another service's answer): `answer_reason` is the one wording.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from smarteros.errors import (
    NotFound,
    OperationError,
    OutcomeUnknown,
    PermissionDenied,
    UpstreamError,
)
from smarteros.infra.egress import (
    DEFAULT_TIMEOUT,
    MAX_BYTES_EXTENSION,
    AnswerLost,
    EgressRefused,
    Response,
    ResponseTooLarge,
    TransportError,
    TransportTimeout,
    egress_client,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ErrorMap",
    "Response",
    "answer_reason",
    "egress_refused",
    "request_json",
    "request_response",
    "response_json",
    "stream_lines",
]


class EgressRefusedError(PermissionDenied):
    """The connection's URL points where tenants may not reach; retrying cannot pass."""

    code = "egress_refused"


def egress_refused(provider: str, url_setting: str, exc: Exception) -> EgressRefusedError:
    """The error for a refused destination, naming the setting an operator corrects."""
    setting = url_setting or "URL"
    return EgressRefusedError(f"{setting}: {provider} may not be reached there: {exc}")


def answer_reason(status: int) -> str:
    """`HTTP 502 (Bad Gateway)`: the status and its standard phrase, nothing from the body."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
    return f"HTTP {status} ({phrase})"


def request_response(
    provider: str, method: str, url: str, *, url_setting: str = "", **kwargs: Any
) -> Response:
    """Send a request and return the response whatever its status, for callers that read a
    provider's own answers (a 429's Retry-After); no answer at all is an UpstreamError, a
    refused destination an EgressRefusedError naming `url_setting`."""
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    try:
        return egress_client().request(method, url, **kwargs)
    except EgressRefused as exc:
        raise egress_refused(provider, url_setting, exc) from None
    except ResponseTooLarge as exc:
        raise UpstreamError(f"{provider} answered too much: {exc}") from None
    except AnswerLost as exc:
        raise OutcomeUnknown(
            f"{provider} got the request but its answer was lost ({type(exc).__name__}, "
            f"timeout {kwargs['timeout']}s): it may have acted"
        ) from None
    except TransportTimeout:
        raise UpstreamError(f"{provider} did not answer within {kwargs['timeout']}s") from None
    except TransportError as exc:
        raise UpstreamError(f"{provider} is unreachable: {type(exc).__name__}") from None


ErrorMap = Callable[[Response], OperationError | None]


def request_json(
    provider: str,
    method: str,
    url: str,
    *,
    map_error: ErrorMap | None = None,
    url_setting: str = "",
    **kwargs: Any,
) -> Any:
    """Send a request and return its JSON body; any failure names the provider and the status.
    `map_error` turns a provider's documented error answer into its own error first."""
    response = request_response(provider, method, url, url_setting=url_setting, **kwargs)
    return response_json(provider, url, response, map_error=map_error)


def response_json(
    provider: str, url: str, response: Response, *, map_error: ErrorMap | None = None
) -> Any:
    """The response's JSON body; a 404 is NotFound, another failure an UpstreamError (unless
    `map_error` knows the provider's answer). The body of a failure is never quoted."""
    if response.status_code >= 400 and map_error is not None:
        mapped = map_error(response)
        if mapped is not None:
            raise mapped
    if response.status_code == 404:
        # The caller named something the provider does not have (an execution, a product):
        # the caller's mistake to correct, not the provider failing.
        raise NotFound(f"{provider} has no {urlsplit(url).path} ({answer_reason(404)})")
    if response.status_code >= 400:
        raise UpstreamError(f"{provider} answered {answer_reason(response.status_code)}")
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(
            f"{provider} answered {answer_reason(response.status_code)} with a body that is "
            "not JSON"
        ) from None


def stream_lines(
    provider: str, url: str, *, timeout: float = 60.0, url_setting: str = ""
) -> Iterator[str]:
    """The lines of a (large) download, read as they arrive: the body is never held whole, and
    the gate bounds it by EGRESS_MAX_DOWNLOAD_BYTES instead of the usual response bound."""
    from django.conf import settings

    extensions = {MAX_BYTES_EXTENSION: settings.EGRESS_MAX_DOWNLOAD_BYTES}
    try:
        with egress_client().stream("GET", url, timeout=timeout, extensions=extensions) as response:
            if response.status_code >= 400:
                response.read()
                response_json(provider, url, response)  # raises, naming the status
            yield from response.iter_lines()
    except EgressRefused as exc:
        raise egress_refused(provider, url_setting or "download URL", exc) from None
    except ResponseTooLarge as exc:
        raise UpstreamError(f"{provider} answered too much: {exc}") from None
    except TransportTimeout:
        raise UpstreamError(f"{provider} did not answer within {timeout}s") from None
    except TransportError as exc:
        raise UpstreamError(f"{provider} is unreachable: {type(exc).__name__}") from None
