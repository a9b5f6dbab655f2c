"""Pooled connections are checked without a round trip while idle and quiet, and a connection
the server closed is still replaced before a request gets it (smarteros.infra.pg_backend)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections

from smarteros.infra.pg_backend.base import DatabaseWrapper, idle_check
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


class CountingConnection(psycopg.Connection[Any]):
    statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.statements += 1
        return super().execute(*args, **kwargs)


def _params() -> dict[str, Any]:
    db = connections["default"].settings_dict
    return {
        "host": db["HOST"],
        "port": db["PORT"],
        "dbname": db["NAME"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "autocommit": True,
    }


def _terminate(pid: int) -> None:
    with psycopg.connect(**_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def _pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_an_idle_connection_is_lent_without_a_round_trip() -> None:
    with CountingConnection.connect(**_params()) as conn:
        idle_check(conn)
        assert conn.statements == 0


def test_a_connection_in_a_transaction_is_not_passed_as_idle() -> None:
    with psycopg.connect(**_params()) as conn:
        conn.autocommit = False
        conn.execute("SELECT 1")
        # psycopg_pool's own check refuses it, so the pool would replace it.
        with pytest.raises(psycopg.ProgrammingError, match="INTRANS"):
            idle_check(conn)


def test_a_connection_the_server_closed_fails_the_check() -> None:
    with psycopg.connect(**_params()) as conn:
        _terminate(_pid(conn))

        def checked() -> bool:
            idle_check(conn)
            return False  # passed as usable: look again until the server's goodbye arrives

        with pytest.raises(psycopg.OperationalError):
            wait_for(checked, timeout=5)


@pytest.fixture
def pooled() -> Iterator[DatabaseWrapper]:
    """Django's wrapper of the test database, pooled and health-checked as the web tier runs."""
    settings_dict = {
        **connections["default"].settings_dict,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 1, "timeout": 5}},
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool_check_test")
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def _wrapper_pid(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_the_pool_replaces_a_terminated_connection_before_lending_it(
    pooled: DatabaseWrapper,
) -> None:
    assert pooled.pool is not None and pooled.pool._check is idle_check
    first = _wrapper_pid(pooled)
    pooled.close()  # back to the pool
    assert _wrapper_pid(pooled) == first  # quiet and idle: lent again as it is
    pooled.close()
    _terminate(first)
    assert _wrapper_pid(pooled) != first  # replaced, and the request's query ran
