"""Login throttling for the console and the admin: after LOGIN_MAX_FAILURES failed sign-ins for
one username from one address within LOGIN_FAILURE_WINDOW_SECONDS, further attempts are refused
(the password is not even checked) until the window has passed. Counted in Redis, so every web
replica shares the count."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)


def _key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\0{address}".encode()).hexdigest()
    return f"smarteros:login-failures:{digest}"


def _address(request: HttpRequest | None) -> str:
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


def login_retry_after(*, username: str, address: str) -> int:
    """Seconds until this username may try again from this address; 0 if it may now. A Redis
    outage lets the attempt through (the password is still checked) and is logged."""
    try:
        client = get_redis()
        key = _key(username, address)
        failures = int(client.get(key) or 0)
        if failures < settings.LOGIN_MAX_FAILURES:
            return 0
        return max(int(client.ttl(key)), 1)
    except Exception as exc:
        log.warning("login throttle unavailable (Redis): %s", type(exc).__name__)
        return 0


def login_failure_record(*, username: str, address: str) -> None:
    try:
        client = get_redis()
        key = _key(username, address)
        with client.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, settings.LOGIN_FAILURE_WINDOW_SECONDS, nx=True)
            pipe.execute()
    except Exception as exc:
        log.warning("login throttle unavailable (Redis): %s", type(exc).__name__)


def login_failures_clear(*, username: str, address: str) -> None:
    try:
        get_redis().delete(_key(username, address))
    except Exception as exc:
        log.warning("login throttle unavailable (Redis): %s", type(exc).__name__)


class ThrottledAuthenticationForm(AuthenticationForm):
    """The sign-in form of the console and the admin, with the throttle in front."""

    throttled = False

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username") or "")
        address = _address(self.request)
        retry_after = login_retry_after(username=username, address=address)
        if retry_after:
            self.throttled = True
            raise ValidationError(
                f"Too many failed sign-ins for this account from your address; try again in "
                f"{(retry_after + 59) // 60} minute(s).",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failure_record(username=username, address=address)
            raise
        login_failures_clear(username=username, address=address)
        return cleaned


class ThrottledLoginView(auth_views.LoginView):
    """The console's sign-in page: 429 while the throttle refuses."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            response.status_code = 429
        return response
