"""The soak's own stack: every service on free ports and a database of its own, started and
supervised by the code behind `make run` (scripts/devstack.py), and the faults it injects.

`configure()` must run before Django or devstack is imported: both read the ports from the
environment when they load.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("postgresql", "redis", "clickhouse", "kafka", "vault")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure() -> Path:
    """Point devstack and the application at ports and a database of the soak's own; the
    shared services on the standard ports are never touched (PostgreSQL is shared, but only a
    database of the soak's own is used, and the server is never stopped)."""
    run_dir = Path(tempfile.mkdtemp(prefix="smarteros-soak-"))
    run_dir.chmod(0o755)  # ClickHouse runs as its own account and keeps its data inside
    web_port = free_port()
    database = f"smarteros_soak_{web_port}"
    os.environ.update(
        {
            "SMARTEROS_RUN_DIR": str(run_dir),
            "SMARTEROS_WEB_PORT": str(web_port),
            "SMARTEROS_KAFKA_PORT": str(free_port()),
            "SMARTEROS_VAULT_PORT": str(free_port()),
            "SMARTEROS_VAULT_CLUSTER_PORT": str(free_port()),
            "SMARTEROS_REDIS_PORT": str(free_port()),
            "SMARTEROS_CLICKHOUSE_PORT": str(free_port()),
            "SMARTEROS_CLICKHOUSE_HTTP_PORT": str(free_port()),
            "SMARTEROS_SERVICES": ",".join(SERVICES),
            "SMARTEROS_KAFKA_BACKUP_SECONDS": "0",
            "SMARTEROS_WEB_WORKERS": "2",
            "DATABASE_URL": f"postgres://smarteros:smarteros@127.0.0.1:5432/{database}",
            "DATABASE_PLATFORM_URL": (
                f"postgres://smarteros_platform:smarteros_platform@127.0.0.1:5432/{database}"
            ),
            "KAFKA_CONSUMER_GROUP_PREFIX": "soak",
            "VAULT_TRANSIT_MOUNT": "transit",
            "SMARTEROS_ENV": "development",
            "EGRESS_ALLOWED_NETWORKS": "127.0.0.1/32",  # the SaaS stand-ins on loopback
        }
    )
    sys.path.insert(0, str(ROOT / "scripts"))
    return run_dir


def devstack() -> ModuleType:
    import devstack as module  # scripts/ is on the path after configure()

    return module


def say(message: str) -> None:
    print(f"[soak] {message}", flush=True)


# Seconds the broker is left to take what was sent just before the producers were paused.
SETTLE_SECONDS = 0.5


@dataclass
class Stack:
    """The running stack: services (devstack's Supervisor) and application processes
    (devstack's ProcessSupervisor), ticked by a thread of its own."""

    supervisor: object = None
    apps: object = None
    env: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    ticker: threading.Thread | None = None
    # Processes of the soak's own that talk to the broker too (the MCP stdio servers): held
    # (none started, none called) for as long as the context lasts, which yields their pids.
    own_processes: Callable[[], contextlib.AbstractContextManager[list[int]]] = lambda: (
        contextlib.nullcontext([])
    )

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{os.environ['SMARTEROS_WEB_PORT']}"

    def start_services(self) -> None:
        ds = devstack()
        self.supervisor = ds.Supervisor()
        ds.bring_up(self.supervisor)
        self.env = ds.stack_env()
        os.environ.update(self.env)
        database = os.environ["DATABASE_URL"].rsplit("/", 1)[-1]
        ds.psql_superuser(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        ds.prepare(self.env)

    def start_apps(self) -> None:
        ds = devstack()
        self.apps = ds.ProcessSupervisor(
            ds.PROCESSES,
            spawn=ds.spawner(self.env, to_logs=True),
            terminate=ds.terminate,
            status=ds.RedisStatus(self.env["REDIS_URL"]),
        )
        self.apps.start_all()  # type: ignore[attr-defined]
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()
        wait(http_answers(f"{self.web_url}/healthz"), 90, "web server")

    def _tick(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                self.apps.tick()  # type: ignore[attr-defined]
            time.sleep(0.2)

    def pids(self) -> dict[str, int]:
        """Process group leaders by name: the application processes and the services."""
        found: dict[str, int] = {}
        with self.lock:
            for child in self.apps.children if self.apps else []:  # type: ignore[attr-defined]
                if child.process is not None and child.process.poll() is None:
                    found[child.spec.name] = child.process.pid
            for service, process in self.supervisor.started:  # type: ignore[attr-defined]
                if process is not None and process.poll() is None:
                    found[service.name] = process.pid
        return found

    def app_process(self, name: str) -> int | None:
        return self.pids().get(name)

    def signal_app(self, name: str, signum: int) -> int:
        """Send `signum` to the process group of application process `name`; its pid."""
        pid = self.app_process(name)
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        os.killpg(pid, signum)
        return pid

    def restart_service(self, name: str, down: float, *, freeze: tuple[str, ...] = ()) -> None:
        """Stop service `name` (after what it holds in memory is saved), keep it down for
        `down` seconds, start it again. `freeze` pauses those application processes (and the
        soak's own processes) while the service is being saved and while it is starting
        again: they see it down, but never half-saved or half-restored."""
        began = time.monotonic()
        if name == "kafka":
            self._backup_in_process()
        with self.frozen(freeze):
            service = self.supervisor.stop_service(name)  # type: ignore[attr-defined]
        stopped = time.monotonic()
        time.sleep(down)
        with self.frozen(freeze):
            self.supervisor.ensure(service)  # type: ignore[attr-defined]
        say(
            f"{name}: saved and stopped in {stopped - began:.1f}s, down {down:.0f}s, "
            f"started and restored in {time.monotonic() - stopped - down:.1f}s"
        )

    def _backup_in_process(self) -> None:
        """Save the broker's topics from this process (Django is loaded already) rather than
        from a new `manage.py topics backup`, whose start-up alone would keep the paused
        processes paused for many seconds; the same backup, kept the same way."""
        from smarteros.events.backup_generations import generations_backup

        ds = devstack()
        backup, bootstrap = ds.KAFKA_BACKUP, f"127.0.0.1:{ds.KAFKA_PORT}"

        def closing() -> None:
            # Requests sent just before the pause may still be in the broker's sockets: let
            # them land, or a write acknowledged after the copy was read would be lost.
            time.sleep(SETTLE_SECONDS)
            generations_backup(backup, bootstrap=bootstrap)

        for service, _ in self.supervisor.started:  # type: ignore[attr-defined]
            if service.name == "kafka":
                service.closing = closing

    @contextlib.contextmanager
    def frozen(self, names: tuple[str, ...]) -> Iterator[None]:
        if not names:
            yield
            return
        with self.own_processes() as extra:
            groups = [self.signal_app(name, signal.SIGSTOP) for name in names]
            for pid in extra:
                os.kill(pid, signal.SIGSTOP)
            try:
                yield
            finally:
                for pid in groups:
                    os.killpg(pid, signal.SIGCONT)
                for pid in extra:
                    os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        self.stopping.set()
        if self.ticker is not None:
            self.ticker.join(5)
        if self.apps is not None:
            with self.lock:
                self.apps.stop_all()  # type: ignore[attr-defined]
        if self.supervisor is not None:
            self.supervisor.stop_all()  # type: ignore[attr-defined]
            database = os.environ["DATABASE_URL"].rsplit("/", 1)[-1]
            try:  # the run's own database only; its logs stay in the run folder
                devstack().psql_superuser(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            except SystemExit:
                say(f"could not drop database {database}; drop it by hand")


def http_answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except Exception:
            return False

    return check


def wait(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until `check()`; the seconds it took."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{what} not ready within {timeout:.0f}s")
        time.sleep(0.25)
    return time.monotonic() - began


def rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (workers, pool children)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(child) for child in children)
    return total
