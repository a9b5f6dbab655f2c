"""Which tenant the database session acts for, enforced by PostgreSQL row-level security.

Every tenant-owned table has a policy comparing its `tenant_id` with the transaction-local
setting `app.tenant_id`. No tenant set means no rows. Platform-wide work goes through
`dangerously_unscoped()`, the one named way around it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.db import connection, transaction

current_tenant_id: ContextVar[int | None] = ContextVar("current_tenant_id", default=None)


def _set_local(name: str, value: str) -> None:
    connection.ensure_connection()
    # The raw psycopg cursor: this runs on every call, and Django's wrapper adds nothing here.
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@contextlib.contextmanager
def tenant_scope(tenant_id: int) -> Iterator[None]:
    """A transaction in which only `tenant_id`'s rows are visible and writable."""
    token = current_tenant_id.set(tenant_id)
    nested = connection.in_atomic_block
    try:
        with transaction.atomic():
            # Outermost: the setting dies with the transaction. Nested: restore the outer one.
            previous = _current("app.tenant_id") if nested else None
            _set_local("app.tenant_id", str(tenant_id))
            yield
            # After an exception the savepoint rollback undoes the setting by itself.
            if previous is not None:
                _set_local("app.tenant_id", previous)
    finally:
        current_tenant_id.reset(token)


@contextlib.contextmanager
def dangerously_unscoped() -> Iterator[None]:
    """A transaction that sees every tenant's rows. Only for platform-wide work: API-key lookup,
    provisioning, platform admins, the outbox relay, demo data."""
    nested = connection.in_atomic_block
    with transaction.atomic():
        previous = _current("app.bypass_rls") if nested else None
        _set_local("app.bypass_rls", "on")
        yield
        if previous is not None:
            _set_local("app.bypass_rls", previous)


def _current(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting(%s, true), '')", [name])
        row = cursor.fetchone()
    return str(row[0]) if row else ""
