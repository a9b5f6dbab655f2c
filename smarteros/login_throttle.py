"""Login throttling for the console and the admin. Two counts per account in Redis (so every
web replica shares them), over LOGIN_FAILURE_WINDOW_SECONDS:
- failed sign-ins for one username from one address: past LOGIN_MAX_FAILURES that address is
  refused for the account;
- failed sign-ins for one username from every address: past LOGIN_MAX_ACCOUNT_FAILURES the
  account is refused everywhere (a guesser rotating addresses).
A refused attempt does not even check the password. Usernames are counted as Django compares
them after NFKC normalisation, and case-folded, so a full-width `admin` and `ADMIN` count as `admin`; the
address is the client's (`smarteros.client_address`), not a header anyone can write."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from smarteros.client_address import request_client_address
from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)


def username_key(username: str) -> str:
    """The account a sign-in is for, as the throttle counts it: NFKC-normalised (as Django's
    UsernameField normalises before looking the user up), stripped and case-folded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _keys(username: str, address: str) -> tuple[str, str]:
    account = username_key(username)
    pair = hashlib.sha256(f"{account}\0{address}".encode()).hexdigest()
    alone = hashlib.sha256(account.encode()).hexdigest()
    return f"smarteros:login-failures:{pair}", f"smarteros:login-failures:account:{alone}"


def _address(request: HttpRequest | None) -> str:
    return request_client_address(request) if request is not None else ""


def login_retry_after(*, username: str, address: str) -> int:
    """Seconds until this username may try again from this address; 0 if it may now. A Redis
    outage lets the attempt through (the password is still checked) and is logged."""
    try:
        client = get_redis()
        pair, account = _keys(username, address)
        failures = client.mget([pair, account])
        limits = (settings.LOGIN_MAX_FAILURES, settings.LOGIN_MAX_ACCOUNT_FAILURES)
        waits = [
            max(int(client.ttl(key)), 1)
            for key, count, limit in zip((pair, account), failures, limits, strict=True)
            if int(count or 0) >= limit
        ]
        return max(waits, default=0)
    except Exception as exc:
        log.warning("login throttle unavailable (Redis): %s", type(exc).__name__)
        return 0


def login_failure_record(*, username: str, address: str) -> None:
    try:
        client = get_redis()
        with client.pipeline() as pipe:
            for key in _keys(username, address):
                pipe.incr(key)
                pipe.expire(key, settings.LOGIN_FAILURE_WINDOW_SECONDS, nx=True)
            pipe.execute()
    except Exception as exc:
        log.warning("login throttle unavailable (Redis): %s", type(exc).__name__)


def login_failures_clear(*, username: str, address: str) -> None:
    """After a good sign-in: this address's count goes; the account's stays until its window
    ends (a guesser elsewhere is still counted)."""
    try:
        get_redis().delete(_keys(username, address)[0])
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
                f"Too many failed sign-ins for this account; try again in "
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
    """The console's sign-in page: 429 while the throttle refuses, 400 for a refused sign-in (a
    script or monitor tells a failed sign-in from a page that loaded)."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 429 if getattr(form, "throttled", False) else 400
        return response
