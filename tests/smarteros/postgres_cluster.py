"""A PostgreSQL cluster of the test's own (initdb, pg_ctl on a free port), which it may stop and
start again, migrated for SmarterOS as the application role."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.processes import ROOT, VENV_BIN, free_port


def _bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else name


class PostgresCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="smarteros-pg-"))
        self.data = self.root / "data"
        # initdb and postgres refuse to run as root.
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_owner, *argv], check=True, capture_output=True, cwd=self.root)

    @property
    def url(self) -> str:
        return f"postgres://smarteros:smarteros@127.0.0.1:{self.port}/smarteros"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_application_database(self) -> None:
        """The application role (neither superuser nor BYPASSRLS), the platform role (BYPASSRLS,
        for dangerously_unscoped) and their migrated database, as the local stack sets them up."""
        psql = [_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]
        self._run(*psql, "CREATE ROLE smarteros LOGIN PASSWORD 'smarteros' CREATEDB")
        self._run(
            *psql,
            "CREATE ROLE smarteros_platform LOGIN PASSWORD 'smarteros_platform' BYPASSRLS",
        )
        self._run(*psql, "CREATE DATABASE smarteros OWNER smarteros")
        subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", "migrate", "-v0"],
            check=True,
            capture_output=True,
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": self.url,
                "DATABASE_PLATFORM_URL": self.platform_url,
            },
        )

    @property
    def platform_url(self) -> str:
        return self.url.replace("smarteros:smarteros@", "smarteros_platform:smarteros_platform@")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
