"""Keeps `make run`'s application processes up (standard library only).

A process that exits is restarted with exponential backoff (1 s, 2 s, 4 s ... 30 s) while the
others keep running; each exit is logged loudly with its exit code or signal. Five exits within
a minute is a crash loop: the process keeps being restarted at the longest delay, and the state
of every process is published to Redis, where /readyz and the console read it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Read by smarteros/infra/supervision.py (the app side); keep the two in step. Suffixed with
# SMARTEROS_STACK_ID (the web port), so stacks sharing one Redis database do not mix.
STATUS_KEY = "smarteros:stack:processes"
STATUS_TTL_SECONDS = 30
CRASH_WINDOW_SECONDS = 60.0
CRASH_LOOP_EXITS = 5
MAX_BACKOFF_SECONDS = 30.0


def shout(message: str) -> None:
    print(f"\033[1;31m[stack] {message}\033[0m", file=sys.stderr, flush=True)


def say(message: str) -> None:
    print(f"\033[1;34m[stack]\033[0m {message}", flush=True)


def describe_exit(returncode: int) -> str:
    """'killed by SIGSEGV' for a signal, 'exited with code 1' otherwise."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass(frozen=True)
class ProcessSpec:
    """One application process of the local stack: its name and how to start it."""

    name: str
    argv: Callable[[], list[str]]


@dataclass
class Supervised:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    exits: deque[float] = field(default_factory=deque)
    last_exit: str = ""
    restart_at: float | None = None

    def recent_exits(self, now: float) -> int:
        while self.exits and now - self.exits[0] > CRASH_WINDOW_SECONDS:
            self.exits.popleft()
        return len(self.exits)

    def state(self, now: float) -> str:
        if self.recent_exits(now) >= CRASH_LOOP_EXITS:
            return "crash-loop"
        return "restarting" if self.restart_at is not None else "running"


class RedisStatus:
    """Writes one JSON value to Redis over RESP; never lets a Redis problem stop the stack."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.password = urllib.parse.unquote(parsed.password) if parsed.password else None
        self.username = urllib.parse.unquote(parsed.username) if parsed.username else None
        self.db = int(parsed.path.strip("/") or 0)
        self.warned = False

    def _command(self, sock: socket.socket, *parts: str) -> None:
        payload = f"*{len(parts)}\r\n" + "".join(f"${len(p.encode())}\r\n{p}\r\n" for p in parts)
        sock.sendall(payload.encode())
        reply = sock.recv(4096)
        if reply.startswith(b"-"):
            raise OSError(reply.decode(errors="replace").strip())

    def set(self, key: str, value: str, ttl: int) -> None:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                if self.password:
                    auth = [self.username, self.password] if self.username else [self.password]
                    self._command(sock, "AUTH", *auth)
                self._command(sock, "SELECT", str(self.db))
                self._command(sock, "SET", key, value, "EX", str(ttl))
            self.warned = False
        except OSError as exc:
            if not self.warned:
                say(f"cannot publish process status to Redis ({exc}); retrying quietly")
                self.warned = True


class ProcessSupervisor:
    """Starts each process spec, restarts what exits, publishes their state."""

    def __init__(
        self,
        specs: list[ProcessSpec],
        *,
        spawn: Callable[[str, list[str]], subprocess.Popen[bytes]],
        terminate: Callable[[subprocess.Popen[bytes], str], None],
        status: RedisStatus | None,
    ) -> None:
        self.children = [Supervised(spec) for spec in specs]
        self._spawn = spawn
        self._terminate = terminate
        self.status = status
        self.published = 0.0

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)
        self.publish()

    def _start(self, child: Supervised) -> int:
        child.process = self._spawn(child.spec.name, child.spec.argv())
        child.started_at = time.monotonic()
        child.restart_at = None
        return child.process.pid

    def tick(self) -> None:
        """Notice exits, start what is due, refresh the published state every few seconds."""
        now = time.monotonic()
        changed = False
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                self._on_exit(child, child.process.returncode, now)
                changed = True
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                pid = self._start(child)
                say(f"{child.spec.name}: restarted (restart {child.restarts}, pid {pid})")
                changed = True
        if changed or now - self.published > 5:
            self.publish()

    def _on_exit(self, child: Supervised, returncode: int, now: float) -> None:
        child.process = None
        child.exits.append(now)
        child.last_exit = describe_exit(returncode)
        recent = child.recent_exits(now)
        delay = min(2.0 ** (recent - 1), MAX_BACKOFF_SECONDS)
        child.restart_at = now + delay
        message = (
            f"{child.spec.name} {child.last_exit}; restart {child.restarts + 1} in {delay:.0f}s"
        )
        if recent >= CRASH_LOOP_EXITS:
            message += f" (crash loop: {recent} exits in {CRASH_WINDOW_SECONDS:.0f}s)"
        shout(message)

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "updated": time.time(),
            "supervisor_pid": os.getpid(),
            "processes": {
                child.spec.name: {
                    "state": child.state(now),
                    "pid": child.process.pid if child.process else None,
                    "restarts": child.restarts,
                    "exits_last_minute": child.recent_exits(now),
                    "last_exit": child.last_exit,
                    "up_seconds": round(now - child.started_at) if child.process else 0,
                }
                for child in self.children
            },
        }

    def publish(self) -> None:
        self.published = time.monotonic()
        if self.status is not None:
            key = f"{STATUS_KEY}:{os.environ.get('SMARTEROS_STACK_ID', '')}"
            self.status.set(key, json.dumps(self.snapshot()), STATUS_TTL_SECONDS)

    def stop_all(self) -> None:
        """Stop every process at once: each has its grace period side by side, so a stop takes
        the longest grace, not their sum."""
        stopping = [
            threading.Thread(target=self._terminate, args=(child.process, child.spec.name))
            for child in reversed(self.children)
            if child.process is not None
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        for child in self.children:
            child.process = None
            child.restart_at = None
