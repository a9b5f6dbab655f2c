"""ClickHouse through clickhouse-driver (native protocol)."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from clickhouse_driver import Client
from django.conf import settings


def connection_params(url: str | None = None) -> dict[str, object]:
    parsed = urlparse(url or settings.CLICKHOUSE_URL)
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 9000,
        "user": unquote(parsed.username or "default"),
        "password": unquote(parsed.password or ""),
        "database": (parsed.path or "/").lstrip("/") or "default",
    }


def clickhouse_client(
    *, timeout: float = 10.0, database: str | None = None, url: str | None = None
) -> Client:
    params = connection_params(url)
    if database is not None:
        params["database"] = database
    return Client(
        connect_timeout=timeout,
        send_receive_timeout=max(timeout, 30.0),
        **params,  # type: ignore[arg-type]
    )


def ensure_database() -> bool:
    """Create the configured database; returns True if it was missing."""
    name = str(connection_params()["database"])
    client = clickhouse_client(database="default")
    try:
        exists = client.execute(
            "SELECT count() FROM system.databases WHERE name = %(n)s", {"n": name}
        )
        if exists[0][0]:
            return False
        client.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        return True
    finally:
        client.disconnect()


def check(timeout: float) -> str:
    client = clickhouse_client(timeout=timeout, database="default")
    client.send_receive_timeout = timeout
    try:
        version = client.execute("SELECT version()")[0][0]
    finally:
        client.disconnect()
    return f"ClickHouse {version}"
