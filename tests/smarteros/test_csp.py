"""The console's CSP may let a form's answer redirect to a checked URL (the OAuth consent's
redirect URI), and never lets a URL end the directive, widen it or name a script scheme."""

from __future__ import annotations

import pytest

from smarteros.csp import CONSOLE_CSP, console_csp, form_source


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("http://127.0.0.1:6284/oauth/callback", "http://127.0.0.1:6284"),
        ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai"),
        ("http://[::1]:33418/cb", "http://[::1]:33418"),
        ("cursor://anysphere.cursor-retrieval/oauth", "cursor:"),
        ("http://a.example;script-src *", None),
        ("https://*.evil.example/", None),
        ("http://x y/", None),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
    ],
)
def test_form_sources(url: str, source: str | None) -> None:
    assert form_source(url) == source


def test_the_policy_adds_only_safe_targets_to_form_action() -> None:
    assert "form-action 'self';" in CONSOLE_CSP
    policy = console_csp(form_targets=["https://claude.ai/cb", "javascript:x", "http://a;b"])
    assert "form-action 'self' https://claude.ai;" in policy
    assert policy.count(";") == CONSOLE_CSP.count(";")
