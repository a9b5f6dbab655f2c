"""PostgreSQL: a cluster of its own (initdb and pg_ctl on a given port, its socket and log in
its folder), or the system's cluster (pg_ctlcluster) that `make run` starts when it is down."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from localstack.processes import LOOPBACK, ServiceError, as_service_user, give_to


def pg_tool(name: str) -> str:
    """The newest installed server or client tool (Debian keeps each major version apart)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=_major)
    return str(found[-1]) if found else (shutil.which(name) or name)


def _major(path: Path) -> int:
    try:
        return int(path.parent.parent.name)
    except ValueError:
        return 0


class PostgresCluster:
    """A cluster under `root` (trust authentication, superuser `postgres`) on loopback `port`,
    run as the postgres account when we are root. `fsync` is off: it holds tests' and drills'
    data, never anything to keep."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data = root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@{LOOPBACK}:{self.port}/postgres"

    def init(self, *, sync: bool = True) -> None:
        """initdb; `sync=False` skips flushing its files to disk (faster, for throwaway data)."""
        self.root.mkdir(parents=True, exist_ok=True)
        give_to(self.root, "postgres")
        self.run(
            pg_tool("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            *([] if sync else ["--no-sync"]),
        )

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses={LOOPBACK} -c fsync=off"
        self.run(
            pg_tool("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, *, mode: str = "fast") -> None:
        self.run(pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def run(self, *argv: str) -> None:
        """A tool as the cluster's owner; ServiceError with its stderr when it fails."""
        result = subprocess.run(
            as_service_user("postgres", list(argv)), capture_output=True, text=True, cwd=self.root
        )
        if result.returncode != 0:
            raise ServiceError(f"postgres: {argv[0]} failed: {result.stderr[-1500:]}")


def system_versions() -> list[str]:
    """The system's cluster versions (Debian's /etc/postgresql/<version>/main), oldest first."""
    root = "/etc/postgresql"
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def system_cluster(version: str, action: str) -> None:
    """`pg_ctlcluster <version> main <action>` (start, stop); a failed start raises."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=action == "start",
    )
