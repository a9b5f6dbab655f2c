"""The official MCP Inspector CLI and conformance suite against our servers (Node 22 from npm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import ROOT, ServerProcess, free_port

pytestmark = pytest.mark.django_db(transaction=True)

NODE_BIN = ROOT / "node_modules" / "node" / "bin"
REQUIRED = [
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "server-sse-multiple-streams",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
]


def node_env(base: dict[str, str]) -> dict[str, str]:
    return {**base, "PATH": f"{NODE_BIN}{os.pathsep}{base.get('PATH', '')}"}


def inspector(env: dict[str, str], key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "inspector"),
            "--cli",
            "-e",
            f"SMARTEROS_API_KEY={key}",
            "-e",
            f"DATABASE_URL={env['DATABASE_URL']}",
            "--cwd",
            str(ROOT),
            sys.executable,
            "manage.py",
            "mcp_serve",
            *args,
        ],
        cwd=ROOT,
        env=node_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_inspector_lists_and_calls_tools_on_mcp_serve(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    acme = make_tenant("acme")
    listed = inspector(server_env, acme.key, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    names = [tool["name"] for tool in json.loads(listed.stdout)["tools"]]
    assert len(names) == 25 and "shopify_sync_products" in names
    called = inspector(
        server_env,
        acme.key,
        "--method",
        "tools/call",
        "--tool-name",
        "tenant_get_metrics",
        "--tool-arg",
        "window_minutes=30",
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"]["tenant"] == "acme"
    refused = inspector(
        server_env,
        acme.key,
        "--method",
        "tools/call",
        "--tool-name",
        "tenant_get_metrics",
        "--tool-arg",
        "window_minutes=0",
    )
    assert refused.returncode == 5  # the tool returned isError
    assert "window_minutes" in json.loads(refused.stdout)["content"][0]["text"]


def test_conformance_suite_passes_against_mcp_http(
    server_env: dict[str, str], make_tenant: Any, tmp_path: Path
) -> None:
    acme = make_tenant("acme")
    port = free_port()
    server = ServerProcess(
        [sys.executable, "manage.py", "mcp_serve", "--transport", "http", "--port", str(port)],
        port=port,
        env={**server_env, "SMARTEROS_API_KEY": acme.key},
        timeout=60,
    )
    try:
        result = subprocess.run(
            [
                str(ROOT / "node_modules" / ".bin" / "conformance"),
                "server",
                "--url",
                f"http://127.0.0.1:{port}/mcp",
                "--expected-failures",
                str(ROOT / "mcp_tools" / "conformance-baseline.yml"),
                "-o",
                str(tmp_path),
            ],
            cwd=ROOT,
            env=node_env(server_env),
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-4000:]
    outcomes: dict[str, set[str]] = {}
    for checks in tmp_path.glob("server-*/checks.json"):
        scenario = checks.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        outcomes[scenario] = {check["status"] for check in json.loads(checks.read_text())}
    for scenario in REQUIRED:
        assert scenario in outcomes, scenario
        assert "FAILURE" not in outcomes[scenario], (scenario, outcomes[scenario])
