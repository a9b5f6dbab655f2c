"""Preparing the running services for the application (database roles and database,
migrations, topics, Transit mount, ClickHouse schema, demo data), and running manage.py with
the environment that points the application at the stack's ports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.parse

from stack_config import (
    CLICKHOUSE_PORT,
    DB_NAME,
    DB_PASSWORD,
    DB_USER,
    KAFKA_PORT,
    KAFKA_RESTORE_LOG,
    LOG_DIR,
    PYTHON,
    REDIS_PORT,
    ROOT,
    VAULT_PORT,
    WEB_PORT,
    app_setting,
    fail,
)
from stack_supervisor import say

from localstack import as_service_user


def psql_superuser(sql: str) -> str:
    """Run SQL as the PostgreSQL superuser: over loopback (trust) or as the postgres account."""
    attempts = [["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]]
    if os.geteuid() == 0:
        attempts.append(as_service_user("postgres", ["psql", "-d", "postgres"]))
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
