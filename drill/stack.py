"""Services of the drill's own: a PostgreSQL cluster (initdb, pg_ctl), a Tansu broker, a
ClickHouse server, an OpenBao server with integrated storage and a Redis, each on free ports
under one folder, stopped and removed by the drill. Never the shared services: every port is
asked of the kernel, so nothing here can reach a server on a standard port."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localstack import ServerProcess, ServiceError, free_port, port_open
from localstack.openbao import (
    openbao_answers,
    openbao_argv,
    openbao_config,
    openbao_initialise,
    openbao_token_create,
    openbao_unseal,
    openbao_wait_active,
)
from localstack.postgres import PostgresCluster
from localstack.services import (
    clickhouse_argv,
    clickhouse_home,
    clickhouse_ready,
    redis_argv,
    tansu_argv,
)
from smarteros.dr.common import DrError

APP_ROLE, APP_PASSWORD = "smarteros", "smarteros"
PLATFORM_ROLE, PLATFORM_PASSWORD = "smarteros_platform", "smarteros_platform"
DATABASE = "smarteros"
CLICKHOUSE_DATABASE = "smarteros"
# The application's Vault token, created with this id on each server (as a production deploy
# keeps VAULT_TOKEN across a restore: the snapshot carries the token).
APP_VAULT_TOKEN = "smarteros-drill-app"


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

    def server(
        self, name: str, argv: list[str], log: str, ready: Callable[[], bool], timeout: float
    ) -> None:
        """Start a server, stopped with the stack (grace 20 s), and wait until `ready()`."""
        process = ServerProcess(argv, name=name, log=self.root / log)
        self.stoppers.append(lambda: process.stop(grace=20))
        process.wait_ready(ready, timeout=timeout)


def _postgres(stack: LocalStack, *, with_database: bool) -> None:
    cluster = PostgresCluster(stack.root / "postgres", free_port())
    cluster.init(sync=False)
    cluster.start()
    stack.stoppers.append(lambda: cluster.stop(mode="immediate"))
    if with_database:
        import psycopg

        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            conn.execute(
                f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS"
            )
            conn.execute(
                f"CREATE ROLE {PLATFORM_ROLE} LOGIN BYPASSRLS NOSUPERUSER NOINHERIT "
                f"PASSWORD '{PLATFORM_PASSWORD}'"
            )
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {APP_ROLE}")
    port = cluster.port
    stack.env.update(
        DATABASE_URL=f"postgres://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{port}/{DATABASE}",
        DATABASE_PLATFORM_URL=(
            f"postgres://{PLATFORM_ROLE}:{PLATFORM_PASSWORD}@127.0.0.1:{port}/{DATABASE}"
        ),
        DR_POSTGRES_ADMIN_URL=cluster.admin_url,
    )


def _kafka(stack: LocalStack) -> None:
    port = free_port()
    stack.server("tansu", tansu_argv(port), "tansu.log", lambda: port_open(port), 30)
    stack.env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{port}"


def _clickhouse(stack: LocalStack) -> None:
    home = clickhouse_home(stack.root / "clickhouse")
    tcp, http, interserver = free_port(), free_port(), free_port()
    argv = clickhouse_argv(home, tcp_port=tcp, http_port=http, interserver_port=interserver)
    stack.server("clickhouse", argv, "ch.log", lambda: clickhouse_ready(http), 90)
    url = f"clickhouse://default@127.0.0.1:{tcp}/{CLICKHOUSE_DATABASE}"
    stack.env.update(
        CLICKHOUSE_URL=url,
        CLICKHOUSE_READ_URL=url,
        DR_CLICKHOUSE_HTTP_URL=f"http://default@127.0.0.1:{http}",
    )


def _vault(stack: LocalStack) -> None:
    home = stack.root / "openbao"
    port, cluster = free_port(), free_port()
    config = openbao_config(
        home, port=port, cluster_port=cluster, node_id="drill", disable_mlock=True
    )
    stack.server("openbao", openbao_argv(config), "bao.log", lambda: openbao_answers(port), 30)
    init = openbao_initialise(port)
    keys_file = home / "unseal-keys.json"  # the shape dr_restore --vault-unseal-keys-file reads
    keys_file.write_text(json.dumps({"keys": init["keys"]}))
    keys_file.chmod(0o600)
    openbao_unseal(port, init["keys"][0])
    openbao_wait_active(port)
    openbao_token_create(port, root_token=init["root_token"], token_id=APP_VAULT_TOKEN)
    stack.vault_keys_file = keys_file
    stack.env.update(
        VAULT_ADDR=f"http://127.0.0.1:{port}",
        VAULT_TOKEN=APP_VAULT_TOKEN,
        VAULT_TRANSIT_MOUNT="transit",
    )


def _redis(stack: LocalStack) -> None:
    port = free_port()
    stack.server("redis", redis_argv(port), "redis.log", lambda: port_open(port), 15)
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
    except ServiceError as exc:
        stack.stop()
        raise DrError(str(exc)) from None
    except BaseException:
        stack.stop()
        raise
    stack.env.update(
        KAFKA_CONSUMER_GROUP_PREFIX="smarteros_drill",
        VAULT_NAMESPACE="",
        CELERY_TASK_ALWAYS_EAGER="false",
    )
    return stack
