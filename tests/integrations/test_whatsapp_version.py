"""The Graph API version is one setting, from the list of versions Meta still serves: sends and
the connection test use it, and an unsupported value stops start-up naming it."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.whatsapp.versions import DEFAULT_GRAPH_VERSION, SUPPORTED_GRAPH_VERSIONS
from tests.smarteros.test_settings import start_django


def test_the_default_is_supported_and_retired_versions_are_not() -> None:
    assert DEFAULT_GRAPH_VERSION in SUPPORTED_GRAPH_VERSIONS
    # Retired by Meta before today (Graph API changelog): v20.0 on 2026-09-24.
    assert "v20.0" not in SUPPORTED_GRAPH_VERSIONS and "v19.0" not in SUPPORTED_GRAPH_VERSIONS
    for version, retired in SUPPORTED_GRAPH_VERSIONS.items():
        assert retired is None or retired > "2026-11-29", version


@pytest.mark.django_db(transaction=True)
def test_sends_and_the_connection_test_use_the_configured_version(
    make_tenant: Any, connect: Any, saas: Any, settings: Any
) -> None:
    from integrations.probe import integration_probe
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    settings.WHATSAPP_GRAPH_API_VERSION = "v24.0"
    tk = make_tenant("vershop")
    connect(tk.tenant, "whatsapp", saas.url)
    sent = execute(
        "whatsapp_send_message",
        {"to": "+14155550100", "text": "hi"},
        principal=principal_from_api_key(tk.key),
        surface="rest",
    )
    assert sent.output is not None and sent.output["effect"]["state"] == "done", sent.error
    integration_probe(tenant=tk.tenant, provider="whatsapp")
    assert [(method, path) for method, path, _, _ in saas.state.requests] == [
        ("POST", "/v24.0/106540352242922/messages"),
        ("GET", "/v24.0/106540352242922"),
    ]


def test_an_unsupported_version_stops_start_up_naming_it() -> None:
    result = start_django(WHATSAPP_GRAPH_API_VERSION="v20.0")
    assert result.returncode != 0 and "started" not in result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert "WHATSAPP_GRAPH_API_VERSION must be one of v21.0" in result.stderr
    assert "got 'v20.0'" in result.stderr
    assert start_django(WHATSAPP_GRAPH_API_VERSION="v26.0").returncode == 0
