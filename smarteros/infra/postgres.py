"""PostgreSQL through Django's connection."""

from __future__ import annotations

import psycopg
from django.conf import settings


def check(timeout: float) -> str:
    """Open fresh connections with a short timeout, so a down server answers fast: the
    application's login and the platform's (dangerously_unscoped() needs it for every API-key
    lookup, so a wrong DATABASE_PLATFORM_URL is an outage too)."""
    version = "?"
    for alias in ("default", "platform"):
        db = settings.DATABASES[alias]
        try:
            with psycopg.connect(
                host=str(db["HOST"]),
                port=str(db["PORT"]),
                dbname=str(db["NAME"]),
                user=str(db["USER"]),
                password=str(db["PASSWORD"]),
                connect_timeout=max(1, int(timeout)),
            ) as conn:
                row = conn.execute("SHOW server_version").fetchone()
        except psycopg.OperationalError as exc:
            raise RuntimeError(f"{alias} login ({db['USER']}): {exc}".strip()) from None
        version = str(row[0]) if row else "?"
    return f"PostgreSQL {version}"
