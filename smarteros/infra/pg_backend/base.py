"""Django's PostgreSQL backend, whose connection pool checks a connection without a round trip
while nothing suggests it is broken.

With CONN_HEALTH_CHECKS, Django has psycopg_pool send an empty query before lending each
connection: two round trips per request (one per login), a quarter of a webhook's cost. A pooled
connection is idle, so the server has nothing to say to it unless it closed it or is closing it
(a restart, pg_terminate_backend, a crash: a FATAL message, or end of file). `idle_check` looks
at the socket without waiting and sends the empty query only if there is something to read, or
the connection is not idle: a connection the server dropped is still replaced before use.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import Connection
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool


def idle_check(conn: Connection[Any]) -> None:
    """psycopg_pool's check callback: quiet if the connection looks usable, else the full check
    (which raises if it is broken, so the pool replaces it)."""
    if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        if not poller.poll(0):
            return
    ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        pool: ConnectionPool | None = super().pool
        # Django passes its own check (a round trip each time) and no way to choose another.
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = idle_check
        return pool
