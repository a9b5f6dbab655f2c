"""PostgreSQL: the application database as a pg_dump custom-format archive, the roles it needs
as a SQL script, and row counts per table; restored as a superuser into a server that does not
have the database yet, then counted again.

The dump is taken as the platform role (BYPASSRLS): the tables force row-level security, so
their owner would see no rows. Role passwords are not in the backup (pg_roles does not show them);
the restore sets those of the roles the target's DATABASE_URL / DATABASE_PLATFORM_URL log in as.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import psycopg
from psycopg import sql

from smarteros.dr.common import DrError, Progress, run_tool

DUMP = "postgres/database.dump"
ROLES = "postgres/roles.sql"
# Role attributes carried over (never SUPERUSER: the application roles must not be).
ATTRIBUTES = (
    ("rolcanlogin", "LOGIN", "NOLOGIN"),
    ("rolbypassrls", "BYPASSRLS", "NOBYPASSRLS"),
    ("rolcreatedb", "CREATEDB", "NOCREATEDB"),
    ("rolcreaterole", "CREATEROLE", "NOCREATEROLE"),
    ("rolinherit", "INHERIT", "NOINHERIT"),
)


def pg_tool(name: str) -> str:
    """The newest installed client tool (Debian keeps each major version apart)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=_major)
    return str(found[-1]) if found else (shutil.which(name) or name)


def _major(path: Path) -> int:
    try:
        return int(path.parent.parent.name)
    except ValueError:
        return 0


def _libpq_env(url: str) -> dict[str, str]:
    """Connection settings for the client tools, so no password appears in a process list."""
    parsed = urlparse(url)
    env = dict(os.environ)
    env.update(
        PGHOST=parsed.hostname or "127.0.0.1",
        PGPORT=str(parsed.port or 5432),
        PGUSER=unquote(parsed.username or ""),
        PGPASSWORD=unquote(parsed.password or ""),
        PGDATABASE=(parsed.path or "/").lstrip("/"),
    )
    return env


def database_name(url: str) -> str:
    return unquote((urlparse(url).path or "/").lstrip("/"))


def _with_database(url: str, name: str) -> str:
    return urlparse(url)._replace(path=f"/{name}").geturl()


def table_counts(url: str) -> dict[str, int]:
    """Rows per table of the public schema (read with a role that bypasses RLS)."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        counts = {}
        for name in names:
            query = sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(name))
            row = conn.execute(query).fetchone()
            counts[name] = int(row[0]) if row else 0
    return counts


def _roles_script(url: str) -> tuple[str, list[str]]:
    """CREATE ROLE statements (idempotent) for the roles that own or are granted anything in
    the database, without passwords."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT r.rolname, r.rolcanlogin, r.rolbypassrls, r.rolcreatedb, r.rolcreaterole,
                   r.rolinherit
            FROM pg_roles r
            WHERE NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%' AND (
                r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database())
                OR r.rolname IN (SELECT tableowner FROM pg_tables WHERE schemaname = 'public')
                OR r.rolname IN (SELECT grantee FROM information_schema.role_table_grants
                                 WHERE table_schema = 'public'))
            ORDER BY r.rolname
            """
        ).fetchall()
    lines = ["-- Roles the database needs; passwords are set separately.", ""]
    names = []
    for row in rows:
        name = row[0]
        names.append(name)
        flags = " ".join(
            on if value else off for (_, on, off), value in zip(ATTRIBUTES, row[1:], strict=True)
        )
        quoted = '"' + name.replace('"', '""') + '"'
        literal = "'" + name.replace("'", "''") + "'"
        lines += [
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {literal}) "
            f"THEN CREATE ROLE {quoted}; END IF; END $$;",
            f"ALTER ROLE {quoted} WITH NOSUPERUSER {flags};",
        ]
    return "\n".join(lines) + "\n", names


def postgres_backup(directory: Path, *, url: str, progress: Progress) -> dict[str, Any]:
    """Dump the database `url` points at (a BYPASSRLS role) into `directory`."""
    (directory / "postgres").mkdir(parents=True, exist_ok=True)
    script, roles = _roles_script(url)
    (directory / ROLES).write_text(script)
    progress(f"postgres: roles {', '.join(roles)}")
    counts = table_counts(url)
    run_tool(
        [pg_tool("pg_dump"), "--format=custom", "--compress=1", f"--file={directory / DUMP}"],
        env=_libpq_env(url),
        what="pg_dump",
    )
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    progress(
        f"postgres: {sum(counts.values())} rows in {len(counts)} tables, "
        f"{(directory / DUMP).stat().st_size} bytes"
    )
    return {
        "database": database_name(url),
        "server_version": version[0] if version else "",
        "pg_dump": run_tool([pg_tool("pg_dump"), "--version"], what="pg_dump").stdout.strip(),
        "dump": DUMP,
        "roles_script": ROLES,
        "roles": roles,
        "tables": counts,
        "rows": sum(counts.values()),
    }


def postgres_target_state(*, admin_url: str, database: str) -> tuple[bool, str]:
    """(whether the database exists, '' when it is absent or has no tables, else what it holds)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            return False, ""
    with psycopg.connect(_with_database(admin_url, database), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    tables = int(row[0]) if row else 0
    return True, f"database {database} has {tables} tables" if tables else ""


def postgres_restore_start(
    directory: Path,
    part: dict[str, Any],
    *,
    admin_url: str,
    app_url: str,
    platform_url: str,
    force: bool,
    progress: Progress,
) -> subprocess.Popen[str]:
    """Create the roles and the database, then start pg_restore (a process: the caller restores
    the other parts meanwhile and waits with `postgres_restore_finish`)."""
    database = database_name(app_url)
    exists, held = postgres_target_state(admin_url=admin_url, database=database)
    if held and not force:
        raise DrError(f"postgres: the target is not empty ({held}); use --force to replace it")
    env = _libpq_env(admin_url)
    run_tool(
        [
            pg_tool("psql"),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-f",
            str(directory / part["roles_script"]),
        ],
        env=env,
        what="postgres roles",
    )
    owner = unquote(urlparse(app_url).username or "")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for url in (app_url, platform_url):
            parsed = urlparse(url)
            role = unquote(parsed.username or "")
            if parsed.password and role in part["roles"]:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(unquote(parsed.password))
                    )
                )
        if exists:  # empty (as a fresh server's entrypoint creates it) or replaced (--force)
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            progress(f"postgres: dropped the existing database {database} ({held or 'empty'})")
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(owner)
            )
        )
    progress(f"postgres: roles and database {database} created; pg_restore running")
    return subprocess.Popen(
        [
            pg_tool("pg_restore"),
            "--exit-on-error",
            "--jobs=2",
            f"--dbname={database}",
            str(directory / part["dump"]),
        ],
        env={**env, "PGDATABASE": database},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def postgres_restore_finish(
    process: subprocess.Popen[str], part: dict[str, Any], *, platform_url: str, progress: Progress
) -> int:
    """Wait for pg_restore, then compare every table's row count with the backup's."""
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise DrError(f"pg_restore failed (exit {process.returncode}): {stderr.strip()[-2000:]}")
    counts = table_counts(platform_url)
    for table, expected in part["tables"].items():
        if counts.get(table) != expected:
            raise DrError(
                f"postgres: table {table} has {counts.get(table)} rows after restore, "
                f"backup had {expected}"
            )
    progress(f"postgres: {sum(counts.values())} rows in {len(counts)} tables match the backup")
    return sum(counts.values())
