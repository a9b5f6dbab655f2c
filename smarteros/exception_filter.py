"""What error reports (the debug page, emailed reports) may show: never a credential.

Django's default filter hides settings named like API/TOKEN/KEY/SECRET/PASS/SIGNATURE/AUTH; a
connection URL (DATABASE_URL, REDIS_URL, a DSN) carries its password inside the value, under a
name the default misses. Here URL and DSN names are hidden too, a password inside any URL-shaped
value is masked wherever it appears (settings, request data, frame variables), and frame
variables with a secret-looking name are hidden without needing @sensitive_variables.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.I)


def mask_url_passwords(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:********@host`, anywhere in `text`."""
    return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:********@", text)


class CredentialFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|AUTH|COOKIE|CREDENTIAL|URL|DSN|LOCATION", flags=re.I
    )

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        return mask_url_passwords(cleansed) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [
            (name, self.cleanse_setting(name, value) if isinstance(name, str) else value)
            for name, value in variables
        ]


class CredentialReporter(ExceptionReporter):
    """The debug page and error e-mails, with URL passwords masked in everything they render
    (the exception's own message included, which no filter sees)."""

    def get_traceback_html(self) -> SafeString:
        # Masking adds no markup to output that was already escaped: it stays safe.
        return mark_safe(mask_url_passwords(super().get_traceback_html()))

    def get_traceback_text(self) -> SafeString:
        return mark_safe(mask_url_passwords(super().get_traceback_text()))
