"""State of the local stack that outlives `make run` (standard library and localstack/ only).

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
from collections.abc import Callable
from pathlib import Path

from localstack.openbao import (
    openbao_initialise,
    openbao_request,
    openbao_token_create,
    openbao_unseal,
    openbao_wait_active,
)

# --- OpenBao ----------------------------------------------------------------------------------


def vault_open(port: int, home: Path, app_token: str, say: Callable[[str], None]) -> None:
    """Initialise (first start only), unseal, and make sure `app_token` is a valid token."""
    keys_file = home / "init.json"
    status = openbao_request(port, "GET", "sys/seal-status")[1]
    if not status.get("initialized"):
        if keys_file.exists():
            raise RuntimeError(
                f"{keys_file} exists but the server is not initialised: its data folder was "
                "removed; run `make clean-state` to start afresh"
            )
        init = openbao_initialise(port)
        keys_file.touch(mode=0o600)
        keys_file.write_text(
            json.dumps({"unseal_key": init["keys"][0], "root_token": init["root_token"]})
        )
        say(f"vault: initialised; unseal key and root token in {keys_file} (local use only)")
        status = openbao_request(port, "GET", "sys/seal-status")[1]
    if not keys_file.exists():
        return  # a server of someone else's: it keeps its own keys
    keys = json.loads(keys_file.read_text())
    if status.get("sealed"):
        openbao_unseal(port, keys["unseal_key"])
    openbao_wait_active(port)
    if openbao_request(port, "GET", "auth/token/lookup-self", token=app_token)[0] != 200:
        openbao_token_create(
            port,
            root_token=keys["root_token"],
            token_id=app_token,
            display_name="smarteros-local-app",
        )
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
