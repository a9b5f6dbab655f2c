"""Servers of a test's own, started with the local stack's launcher (localstack/): the same
command lines as `make run`, on free ports, their logs in .run/logs/test-<binary>-<port>.log."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import localstack
from localstack import descendants, free_port, http_answers, port_open
from localstack.openbao import openbao_dev_argv
from localstack.services import clickhouse_argv, clickhouse_home, clickhouse_ready, tansu_argv
from localstack.services import tansu_binary as tansu_binary

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# The names tests and benchmarks import from here.
__all__ = [
    "ROOT",
    "VENV_BIN",
    "ClickHouseServer",
    "ServerProcess",
    "asgi_server",
    "descendants",
    "free_port",
    "http_ready",
    "kafka_broker",
    "port_open",
    "start_kafka_broker",
    "tansu_binary",
    "vault_server",
]

http_ready = http_answers


class ServerProcess(localstack.ServerProcess):
    """`argv` started and answering on `port` (and `ready()`, when given) once constructed."""

    def __init__(
        self,
        argv: list[str],
        *,
        port: int,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(
            argv,
            port=port,
            log=ROOT / ".run" / "logs" / f"test-{Path(argv[0]).name}-{port}.log",
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        self.wait_ready(ready, timeout=timeout)


def asgi_server(
    app: str = "smarteros.asgi:application",
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
    health_path: str = "/healthz",
) -> ServerProcess:
    """An ASGI app under uvicorn, as `make run` serves it, up once `health_path` answers."""
    port = port or free_port()
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--no-proxy-headers",
            *args,
        ],
        port=port,
        env=env,
        ready=http_answers(f"http://127.0.0.1:{port}{health_path}"),
        timeout=60,
    )


def start_kafka_broker(port: int) -> ServerProcess:
    return ServerProcess(tansu_argv(port), port=port)


@contextlib.contextmanager
def kafka_broker() -> Iterator[ServerProcess]:
    """A broker of our own (memory storage), so a test may stop it without harming others."""
    server = start_kafka_broker(free_port())
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def vault_server(token: str = "test-root") -> Iterator[ServerProcess]:
    """An OpenBao dev server of our own (in memory, unsealed), `token` its root token."""
    port = free_port()
    server = ServerProcess(openbao_dev_argv(port, token=token), port=port)
    try:
        yield server
    finally:
        server.stop()


class ClickHouseServer:
    """A ClickHouse server of the test's own (ports and data directory), which it may stop and
    start again; data survives a restart as on any ClickHouse."""

    def __init__(self) -> None:
        self.tcp_port, self.http_port, self.interserver_port = free_port(), free_port(), free_port()
        self.root = clickhouse_home(Path(tempfile.mkdtemp(prefix="smarteros-ch-")))
        self.process: ServerProcess | None = None

    def argv(self) -> list[str]:
        return clickhouse_argv(
            self.root,
            tcp_port=self.tcp_port,
            http_port=self.http_port,
            interserver_port=self.interserver_port,
        )

    @property
    def url(self) -> str:
        return f"clickhouse://default@127.0.0.1:{self.tcp_port}/smarteros"

    def start(self) -> None:
        self.process = ServerProcess(
            self.argv(),
            port=self.tcp_port,
            ready=lambda: clickhouse_ready(self.http_port),
            timeout=60,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
