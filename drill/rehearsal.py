"""`dr_drill`: a timed disaster-recovery rehearsal on services of its own.

It starts a source stack, seeds it (migrations, tenants provisioned and connected to Shopify,
telemetry rows, N messages over their topics), runs `dr_backup`, stops the source, starts an
empty target stack, runs `dr_restore` (which verifies every count and checksum) and proves a
restored tenant works: an MCP call with its API key, its REST API, and signed webhooks whose
secret only the restored Vault keys decrypt. The RTO is the time from the start
of the restore to the end of those checks; the services are up before the clock starts, as
fresh hosts would be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from drill.stack import LocalStack, local_stack_start
from smarteros.dr.common import MANIFEST, DrError, Progress


@dataclass
class DrillReport:
    messages: int
    backup_seconds: float
    backup_bytes: int
    restore_seconds: float
    check_seconds: float
    rto_seconds: float
    manifest: dict[str, Any]


def _child_env(stack: LocalStack) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DR_")}
    env.update(stack.env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _manage(
    args: list[str],
    *,
    env: dict[str, str],
    label: str,
    progress: Progress,
    timeout: float,
    owner: _Background | None = None,
) -> None:
    """Run manage.py in a child pointed at a drill stack, its lines relayed as progress."""
    process = subprocess.Popen(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if owner is not None:
        owner.process = process
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    tail: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail = [*tail[-19:], line]
            progress(f"  {label}| {line}")
        process.wait()
    finally:
        timer.cancel()
    if process.returncode != 0:
        raise DrError(f"{label} failed (exit {process.returncode}): " + " / ".join(tail[-5:]))


class _Background:
    """A manage.py child whose lines are relayed by a thread while the caller does other work."""

    def __init__(
        self, args: list[str], *, env: dict[str, str], label: str, progress: Progress
    ) -> None:
        self.label = label
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(args, env, progress), daemon=True)
        self.process: subprocess.Popen[str] | None = None
        self.thread.start()

    def _run(self, args: list[str], env: dict[str, str], progress: Progress) -> None:
        try:
            _manage(args, env=env, label=self.label, progress=progress, timeout=1800, owner=self)
        except BaseException as exc:  # re-raised by wait()
            self.errors.append(exc)

    def wait(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise DrError(f"{self.label} did not finish within {timeout:.0f}s")
        if self.errors:
            raise self.errors[0]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.thread.join(30)


def dr_drill(
    *, messages: int, tenants: int, workdir: Path | None, keep: bool, progress: Progress
) -> DrillReport:
    """Run the whole drill; DrError names the step that failed."""
    root = Path(tempfile.mkdtemp(prefix="smarteros-drill-", dir=workdir))
    if os.geteuid() == 0:
        root.chmod(0o755)  # the database and ClickHouse accounts reach their folders through it
    secrets_file, backup = root / "tenant-secrets.json", root / "backup"
    stacks: list[LocalStack] = []
    try:
        source = local_stack_start(root / "source", with_database=True, progress=progress)
        stacks.append(source)
        _manage(
            [
                "dr_drill_step",
                "seed",
                f"--tenants={tenants}",
                f"--messages={messages}",
                f"--secrets-file={secrets_file}",
            ],
            env=_child_env(source),
            label="seed",
            progress=progress,
            timeout=1800,
        )
        started = time.monotonic()
        _manage(
            ["dr_backup", str(backup)],
            env=_child_env(source),
            label="dr_backup",
            progress=progress,
            timeout=1800,
        )
        backup_seconds = time.monotonic() - started
        keys_file = source.vault_keys_file
        source.stop()  # a disaster: the source is gone; only the backup and the unseal keys remain
        progress("source stack stopped; starting an empty target stack")
        target = local_stack_start(root / "target", with_database=False, progress=progress)
        stacks.append(target)

        progress("restore clock starts")
        started = time.monotonic()
        restored_mark = root / "restored"
        # The checker boots (imports, settings) while the restore runs, as the web tier's
        # processes would; it touches the services only once the restore has finished.
        checker = _Background(
            [
                "dr_drill_step",
                "check",
                f"--secrets-file={secrets_file}",
                f"--wait-for={restored_mark}",
            ],
            env=_child_env(target),
            label="check",
            progress=progress,
        )
        try:
            _manage(
                ["dr_restore", str(backup), f"--vault-unseal-keys-file={keys_file}"],
                env=_child_env(target),
                label="dr_restore",
                progress=progress,
                timeout=1800,
            )
            restored = time.monotonic()
            restored_mark.touch()
            checker.wait(timeout=600)
        finally:
            checker.kill()
        finished = time.monotonic()
        manifest = json.loads((backup / MANIFEST).read_text())
        return DrillReport(
            messages=messages,
            backup_seconds=backup_seconds,
            backup_bytes=int(manifest["bytes"]),
            restore_seconds=restored - started,
            check_seconds=finished - restored,
            rto_seconds=finished - started,
            manifest=manifest,
        )
    finally:
        for stack in stacks:
            stack.stop()
        if keep:
            progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
