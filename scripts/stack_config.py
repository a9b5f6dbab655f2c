"""Where the local stack lives and which ports it uses, read once from the environment (see
scripts/devstack.py for the variables), and how it fails."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("SMARTEROS_RUN_DIR") or ROOT / ".run").resolve()
LOG_DIR = RUN_DIR / "logs"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")

DB_NAME = "smarteros"
DB_USER = "smarteros"
DB_PASSWORD = "smarteros"
VAULT_DEV_TOKEN = "smarteros-dev-root"
WEB_PORT = int(os.environ.get("SMARTEROS_WEB_PORT", "8000"))
KAFKA_PORT = int(os.environ.get("SMARTEROS_KAFKA_PORT", "9092"))
VAULT_PORT = int(os.environ.get("SMARTEROS_VAULT_PORT", "8200"))
VAULT_CLUSTER_PORT = int(os.environ.get("SMARTEROS_VAULT_CLUSTER_PORT", str(VAULT_PORT + 1)))
REDIS_PORT = int(os.environ.get("SMARTEROS_REDIS_PORT", "6379"))
CLICKHOUSE_PORT = int(os.environ.get("SMARTEROS_CLICKHOUSE_PORT", "9000"))
CLICKHOUSE_HTTP_PORT = int(os.environ.get("SMARTEROS_CLICKHOUSE_HTTP_PORT", "8123"))
KAFKA_BACKUP = RUN_DIR / "kafka-backup"
KAFKA_BACKUP_SECONDS = float(os.environ.get("SMARTEROS_KAFKA_BACKUP_SECONDS", "60"))
# The last restore's output; /readyz points to it when the restore did not complete.
KAFKA_RESTORE_LOG = LOG_DIR / "kafka-restore.log"
# Web worker processes: one per core, at most 4 (the rest of the stack needs cores too).
WEB_WORKERS = int(os.environ.get("SMARTEROS_WEB_WORKERS") or min(4, os.cpu_count() or 1))


def fail(message: str, fix: str) -> NoReturn:
    print(f"\033[1;31m[stack] {message}\033[0m\n        fix: {fix}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    hint = (
        f"see {log.relative_to(ROOT) if log and log.is_relative_to(ROOT) else log}" if log else ""
    )
    fail(f"{what} did not become ready within {timeout:.0f}s", hint or "check the service's log")


def app_setting(name: str, default: str) -> str:
    """A setting as the application will see it: the environment, else .env, else `default`."""
    if name in os.environ:
        return os.environ[name]
    dotenv = ROOT / ".env"
    if dotenv.exists():
        for line in dotenv.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return default
