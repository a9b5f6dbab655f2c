"""Server processes: each in a session of its own (a Ctrl-C reaches only its supervisor, and
a stop reaches the server's children too), its output in a log file, waited for until it
answers, stopped with SIGTERM and, after a grace period, SIGKILL."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A service that could not be started or set up; the message names it and why."""


def free_port() -> int:
    """A port nothing listens on now, chosen by the kernel (never a standard one in use)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.3) -> bool:
    """Something accepts connections on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def http_answers(url: str) -> Callable[[], bool]:
    """A readiness check: the URL answers (any HTTP status means the server is up)."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return ready


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: the URL answers with a success (a ClickHouse /ping)."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status < 400)
        except OSError:
            return False

    return ready


def as_service_user(user: str, argv: list[str]) -> list[str]:
    """Run as a service account when we are root (ClickHouse and PostgreSQL refuse root)."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return argv


def give_to(path: Path, user: str) -> None:
    """Hand a data folder to the service account that `as_service_user` runs the server as."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        shutil.chown(path, user, user)


def spawn(
    argv: list[str],
    *,
    log: Path,
    append: bool = False,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a session of its own, stdin closed, stdout and stderr to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as output:  # the child keeps its own copy
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def terminate(
    process: subprocess.Popen[bytes],
    *,
    grace: float = 10.0,
    on_kill: Callable[[], None] | None = None,
) -> None:
    """SIGTERM to the process's group, SIGKILL if it has not exited after `grace` seconds
    (`on_kill` is told first); returns once it has exited."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        if on_kill is not None:
            on_kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class ServerProcess:
    """A server started by `spawn`; `wait_ready` waits until it answers, `stop` ends it."""

    def __init__(
        self,
        argv: list[str],
        *,
        log: Path,
        name: str | None = None,
        port: int | None = None,
        append: bool = False,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name or Path(argv[0]).name
        self.port = port
        self.log_path = log
        self.process = spawn(argv, log=log, append=append, cwd=cwd, env=env)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def wait_ready(
        self, ready: Callable[[], bool] | None = None, *, timeout: float = 30.0
    ) -> ServerProcess:
        """Wait until its port accepts connections and `ready()` holds. If it exits first or
        the time runs out, it is stopped and ServiceError ends with its log's tail."""
        deadline = time.monotonic() + timeout
        while not ((self.port is None or port_open(self.port)) and (ready is None or ready())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                where = f" on {self.port}" if self.port else ""
                raise ServiceError(f"{self.name} did not start{where}: {self.log_tail()}")
            time.sleep(0.1)
        return self

    def stop(self, grace: float = 10.0) -> None:
        terminate(self.process, grace=grace)


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
