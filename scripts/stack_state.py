"""State of the local stack that outlives `make run` (standard library only).

OpenBao keeps its data in files under the run folder (integrated storage): initialised once, unsealed on every start.
Its unseal key and root token are kept beside the data, readable by the owner only: this is a
local development store, never a production one (there: auto-unseal or key holders). The token
the application is configured with (VAULT_TOKEN) is created once with that exact id, so settings
stay as they are and a changed VAULT_TOKEN is created on the next start.

The local Kafka broker (Tansu) has no durable storage in any build that installs from the
registries, so its topics are backed up in generations with `manage.py topics generation-backup`
on stop (and every minute while running: only what changed) and restored into the fresh broker
on start.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --- OpenBao ----------------------------------------------------------------------------------


def vault_config(home: Path, port: int, cluster_port: int) -> Path:
    """Write the server's configuration (integrated storage under `home`) and return its path.
    Integrated (raft) storage: OpenBao 2 dropped the plain file backend; one node is enough."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "config.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{home / "data"}"\n  node_id = "local"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
        f'  cluster_address = "127.0.0.1:{cluster_port}"\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\n'
        f'cluster_addr = "http://127.0.0.1:{cluster_port}"\n'
    )
    return config


def _vault(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/{path}",
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


def vault_answers(port: int) -> Callable[[], bool]:
    """Ready once the API answers at all (sealed and uninitialised servers answer too)."""

    def check() -> bool:
        try:
            return _vault(port, "GET", "sys/seal-status")[0] == 200
        except OSError:
            return False

    return check


def vault_open(port: int, home: Path, app_token: str, say: Callable[[str], None]) -> None:
    """Initialise (first start only), unseal, and make sure `app_token` is a valid token."""
    keys_file = home / "init.json"
    status = _vault(port, "GET", "sys/seal-status")[1]
    if not status.get("initialized"):
        if keys_file.exists():
            raise RuntimeError(
                f"{keys_file} exists but the server is not initialised: its data folder was "
                "removed; run `make clean-state` to start afresh"
            )
        code, init = _vault(port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        if code != 200:
            raise RuntimeError(f"vault init failed ({code}): {init}")
        keys_file.touch(mode=0o600)
        keys_file.write_text(
            json.dumps({"unseal_key": init["keys"][0], "root_token": init["root_token"]})
        )
        say(f"vault: initialised; unseal key and root token in {keys_file} (local use only)")
        status = _vault(port, "GET", "sys/seal-status")[1]
    if not keys_file.exists():
        return  # a server of someone else's: it keeps its own keys
    keys = json.loads(keys_file.read_text())
    if status.get("sealed"):
        code, answer = _vault(port, "PUT", "sys/unseal", {"key": keys["unseal_key"]})
        if code != 200 or answer.get("sealed"):
            raise RuntimeError(f"vault unseal failed ({code}): {answer}")
    # Unsealed, the node still has to elect itself leader before it serves requests.
    deadline = time.monotonic() + 30
    while _vault(port, "GET", "sys/health")[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("vault did not become active within 30s of unsealing")
        time.sleep(0.25)
    if _vault(port, "GET", "auth/token/lookup-self", token=app_token)[0] != 200:
        code, answer = _vault(
            port,
            "POST",
            "auth/token/create",
            {
                "id": app_token,
                "policies": ["root"],
                "no_parent": True,
                "display_name": "smarteros-local-app",
            },
            token=keys["root_token"],
        )
        if code != 200:
            raise RuntimeError(f"vault: could not create the configured token ({code}): {answer}")
        say("vault: created the configured VAULT_TOKEN")


# --- Kafka topics -----------------------------------------------------------------------------

# `manage.py topics generation-backup`'s exit status when it wrote nothing because the broker is
# not the one the newest generation describes (smarteros/management/commands/topics.py).
BACKUP_REFUSED = 3


def topics_restore(
    backup: Path,
    bootstrap: str,
    manage: Callable[..., subprocess.CompletedProcess[bytes]],
) -> tuple[bool, str]:
    """Replay the newest good generation into a fresh broker (or, with none yet, make this
    broker the first); (done, a describing line for the log)."""
    result = manage("topics", "generation-restore", str(backup), "--bootstrap-servers", bootstrap)
    if result.returncode != 0:
        return False, f"restore from {backup} failed (exit {result.returncode})"
    return True, f"restored from {backup}"


def topics_backup_start(
    backup: Path, bootstrap: str, popen: Callable[..., subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Start adding a generation to `backup`: only what changed since the newest one. It is
    written beside the others and verified before the oldest is dropped, so a failed or
    refused one never replaces a good one (see smarteros/events/backup_generations.py)."""
    return popen("topics", "generation-backup", str(backup), "--bootstrap-servers", bootstrap)


def topics_backup_outcome(returncode: int) -> str:
    """ "done", "refused" (the broker's restore did not complete: nothing written) or "failed"."""
    if returncode == 0:
        return "done"
    return "refused" if returncode == BACKUP_REFUSED else "failed"
