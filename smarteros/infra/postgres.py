"""PostgreSQL through Django's connection."""

from __future__ import annotations

import psycopg
from django.conf import settings


def check(timeout: float) -> str:
    """Open a fresh connection with a short timeout, so a down server answers fast."""
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=str(db["HOST"]),
        port=str(db["PORT"]),
        dbname=str(db["NAME"]),
        user=str(db["USER"]),
        password=str(db["PASSWORD"]),
        connect_timeout=max(1, int(timeout)),
    ) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"
