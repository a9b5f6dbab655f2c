"""A PostgreSQL cluster of the test's own (initdb, pg_ctl on a free port), which it may stop and
start again, migrated for SmarterOS as the application role."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from localstack import ServiceError
from localstack import postgres as launcher
from localstack.postgres import pg_tool
from tests.processes import ROOT, VENV_BIN, free_port


class PostgresCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="smarteros-pg-"))
        self.cluster = launcher.PostgresCluster(self.root, self.port)
        self.data = self.cluster.data
        self.cluster.init()

    @property
    def url(self) -> str:
        return f"postgres://smarteros:smarteros@127.0.0.1:{self.port}/smarteros"

    def start(self) -> None:
        self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()

    def create_application_database(self) -> None:
        """The application role (neither superuser nor BYPASSRLS), the platform role (BYPASSRLS,
        for dangerously_unscoped) and their migrated database, as the local stack sets them up."""
        psql = [pg_tool("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]
        self.cluster.run(*psql, "CREATE ROLE smarteros LOGIN PASSWORD 'smarteros' CREATEDB")
        self.cluster.run(
            *psql,
            "CREATE ROLE smarteros_platform LOGIN PASSWORD 'smarteros_platform' BYPASSRLS",
        )
        self.cluster.run(*psql, "CREATE DATABASE smarteros OWNER smarteros")
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
        with contextlib.suppress(ServiceError):  # not running
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
