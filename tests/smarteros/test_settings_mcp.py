"""The MCP settings that are structured (JSON, CIDRs) are checked at start-up like the rest."""

from __future__ import annotations

import json

from tests.smarteros.test_settings import start_django


def test_malformed_upstream_settings_are_named_together() -> None:
    result = start_django(
        UPSTREAM_MCP_STDIO_SERVERS=json.dumps(
            {"ok": {"command": "/bin/true"}, "bad name": {"command": "x"}, "no-cmd": {}}
        ),
        EGRESS_ALLOWED_NETWORKS="127.0.0.1/32,not-a-network",
        UPSTREAM_MCP_BLOCKED_NETWORKS="10.0.0.0/33",
    )
    assert result.returncode != 0
    for problem in (
        "entry 'bad name' must be",
        "entry 'no-cmd' must be",
        "EGRESS_ALLOWED_NETWORKS must be comma-separated CIDRs, got 'not-a-network'",
        "UPSTREAM_MCP_BLOCKED_NETWORKS must be comma-separated CIDRs, got '10.0.0.0/33'",
    ):
        assert problem in result.stderr
    not_json = start_django(UPSTREAM_MCP_STDIO_SERVERS="{command: ls}")
    assert not_json.returncode != 0 and "UPSTREAM_MCP_STDIO_SERVERS must be JSON" in not_json.stderr


def test_a_well_formed_stdio_allowlist_starts() -> None:
    entries = {"catalog": {"command": "/usr/bin/env", "args": ["true"], "env": {"A": "b"}}}
    result = start_django(UPSTREAM_MCP_STDIO_SERVERS=json.dumps(entries))
    assert result.returncode == 0, result.stderr
