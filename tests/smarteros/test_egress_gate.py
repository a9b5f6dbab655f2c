"""Nothing outside the egress gate builds an HTTP client: the code itself is enumerated.

Every module of every app is parsed; importing an HTTP client library (or an SDK that builds
one) anywhere but smarteros/infra/egress.py fails, unless the module is listed below with the
reason it may. A new surface that calls out with its own client cannot pass unnoticed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.processes import ROOT

# Libraries that open HTTP connections (or SDKs that build a client of their own).
HTTP_CLIENTS = (
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "anthropic",
    "requests",
    "urllib.request",
    "urllib3",
    "http.client",
    "aiohttp",
    "pycurl",
    "hvac",
    "mcp.client.streamable_http",
    "mcp.client.sse",
    "mcp.shared._httpx_utils",
)

GATE = "smarteros/infra/egress.py"

# module -> (libraries it may import, why). Nothing here is reached with a tenant's URL.
EXCEPTIONS: dict[str, tuple[set[str], str]] = {
    "integrations/llm/client.py": (
        {"anthropic"},
        "the Anthropic SDK, always given the gate's client (checked below: http_client=)",
    ),
    "mcp_tools/upstream.py": (
        {"mcp.client.streamable_http"},
        "the MCP SDK's transport, always given the gate's client (checked below: http_client=)",
    ),
    "smarteros/infra/vault.py": ({"hvac"}, "the platform's own Vault, at VAULT_ADDR"),
    "tenants/secrets.py": (
        {"hvac", "requests"},
        "the platform's own Vault through hvac (requests only for its exception types)",
    ),
    "integrations/inbound.py": ({"hvac"}, "hvac's exception types (Vault down), no client"),
    "smarteros/dr/clickhouse.py": (
        {"urllib.request"},
        "backup and restore tooling: the platform's own ClickHouse, from its settings",
    ),
    "smarteros/dr/vault.py": (
        {"requests"},
        "backup and restore tooling: the platform's own Vault, from its settings",
    ),
    "localstack/processes.py": (
        {"urllib.request"},
        "the local stack's launcher: readiness pings of services it started itself",
    ),
    "localstack/openbao.py": (
        {"urllib.request"},
        "the local stack's launcher: first start of OpenBao servers it started itself",
    ),
}

# Calls that build an SDK client: each must be handed the gate's client.
SDK_CONSTRUCTORS = {"Anthropic", "AsyncAnthropic", "streamable_http_client"}
GATE_CLIENTS = {"egress_client", "egress_async_client", "checked_http_client"}


def app_modules() -> Iterator[Path]:
    """Every Python module of every app (a top-level package other than tests and bench,
    which are the test suite and the benchmarks driving the local stack)."""
    for package in sorted(p.parent for p in ROOT.glob("*/__init__.py")):
        if package.name in {"tests", "bench"}:
            continue
        for path in sorted(package.rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _matches(name: str) -> str | None:
    return next((lib for lib in HTTP_CLIENTS if name == lib or name.startswith(lib + ".")), None)


def imported_http_clients(tree: ast.AST) -> set[str]:
    """The HTTP client libraries a module imports, however it spells the import."""
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                names = [str(first.value)]
        found |= {lib for name in names if (lib := _matches(name))}
    return found


def sdk_clients_without_the_gate(tree: ast.AST) -> list[int]:
    """Lines where an SDK client is built without `http_client=` one of the gate's clients."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called not in SDK_CONSTRUCTORS:
            continue
        given = next((k.value for k in node.keywords if k.arg == "http_client"), None)
        if isinstance(given, ast.Call):
            given = given.func
        name = getattr(given, "id", None) or getattr(given, "attr", None)
        if name not in GATE_CLIENTS:
            lines.append(node.lineno)
    return lines


def test_no_module_outside_the_gate_builds_an_http_client() -> None:
    offenders = []
    modules = list(app_modules())
    assert len(modules) > 100  # the walk found the apps
    for path in modules:
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), filename=relative)
        used = imported_http_clients(tree)
        if relative == GATE:
            assert {"httpx2", "httpcore2"} <= used  # the gate is where the clients are built
            continue
        allowed = EXCEPTIONS.get(relative, (set(), ""))[0]
        if used - allowed:
            offenders.append(f"{relative} imports {sorted(used - allowed)}")
        if lines := sdk_clients_without_the_gate(tree):
            offenders.append(f"{relative}:{lines} builds an SDK client without the gate's")
    assert not offenders, (
        "outbound HTTP must go through smarteros/infra/egress.py (egress_client, "
        "egress_async_client), or be listed in EXCEPTIONS with its reason:\n" + "\n".join(offenders)
    )


def test_every_listed_exception_still_needs_its_place() -> None:
    """A stale exception would let a later import through unnoticed."""
    for relative, (allowed, reason) in EXCEPTIONS.items():
        path = ROOT / relative
        assert path.is_file(), relative
        assert reason
        used = imported_http_clients(ast.parse(path.read_text()))
        assert allowed <= used, f"{relative} no longer imports {sorted(allowed - used)}"


def test_the_walk_catches_every_spelling_of_an_import() -> None:
    source = """
import httpx
import urllib.request as fetch
from http import client
from anthropic import Anthropic
import importlib
importlib.import_module("requests")
from urllib.parse import urlsplit
import http
"""
    assert imported_http_clients(ast.parse(source)) == {
        "httpx",
        "urllib.request",
        "http.client",
        "anthropic",
        "requests",
    }
    unguarded = "import anthropic\nanthropic.Anthropic(api_key='k')\nAnthropic(http_client=x())"
    assert sdk_clients_without_the_gate(ast.parse(unguarded)) == [2, 3]
