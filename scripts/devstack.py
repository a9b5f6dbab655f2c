"""Local stack supervisor behind `make run` and `make test` (standard library and the service
launcher in localstack/ only).

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

Here: the commands and the application processes (PROCESSES). Beside it: stack_config.py
(ports and folders), stack_services.py (the services), stack_prepare.py (database, manage.py,
the application's environment), stack_state.py (what outlives a run), stack_supervisor.py
(restarts and process status).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# scripts/ for the stack's own modules, the project root for the launcher (localstack/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack_config import (
    KAFKA_BACKUP,
    KAFKA_BACKUP_SECONDS,
    KAFKA_PORT,
    LOG_DIR,
    PYTHON,
    REDIS_PORT,
    ROOT,
    RUN_DIR,
    VAULT_PORT,
    VENV_BIN,
    WEB_PORT,
    WEB_WORKERS,
    app_setting,
    fail,
    wait_until,
)
from stack_prepare import manage_background, prepare, psql_superuser, stack_env
from stack_services import SERVICES, Supervisor, terminate
from stack_state import topics_backup_outcome, topics_backup_start
from stack_supervisor import ProcessSpec, ProcessSupervisor, RedisStatus, say, shout

from localstack import port_open

# What the soak (bench/soak_stack.py) and the benchmarks take from this module.
__all__ = [
    "KAFKA_BACKUP",
    "KAFKA_PORT",
    "PROCESSES",
    "PROCESS_ENV",
    "REDIS_PORT",
    "RUN_DIR",
    "VAULT_PORT",
    "WEB_PORT",
    "ProcessSupervisor",
    "RedisStatus",
    "Supervisor",
    "bring_up",
    "install_signal_handlers",
    "prepare",
    "psql_superuser",
    "spawner",
    "stack_env",
    "terminate",
]


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
