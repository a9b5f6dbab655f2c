"""Which tenant the database session acts for, enforced by PostgreSQL row-level security.

Every tenant-owned table has a policy comparing its `tenant_id` with the transaction-local
setting `app.tenant_id`. No tenant set means no rows. Platform-wide work goes through
`dangerously_unscoped()`, the one named way around it: it runs on a second database login (the
`platform` alias, a role with BYPASSRLS). The application's own login is not a member of that
role, so nothing it runs (a setting, SET ROLE, an injected statement) can switch RLS off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from psycopg import ClientCursor

PLATFORM_DB = "platform"

current_tenant_id: ContextVar[int | None] = ContextVar("current_tenant_id", default=None)
# The tenant whose setting tenant_read_scope puts in front of each statement; None inside a
# transaction scope, whose own setting governs.
_read_tenant_id: ContextVar[int | None] = ContextVar("read_tenant_id", default=None)
# True inside dangerously_unscoped() (and back to False inside a tenant scope nested in it).
_unscoped: ContextVar[bool] = ContextVar("unscoped", default=False)


class ScopeRouter:
    """Sends the ORM to the platform login inside dangerously_unscoped(), to the application's
    login everywhere else. Always answers, so an object loaded unscoped and saved later goes
    through row-level security like any other."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return PLATFORM_DB if _unscoped.get() else DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return PLATFORM_DB if _unscoped.get() else DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # both aliases are the same database

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


def scoped_connection() -> BaseDatabaseWrapper:
    """The connection raw SQL must use here: the platform login inside dangerously_unscoped(),
    the application's otherwise."""
    return connections[PLATFORM_DB if _unscoped.get() else DEFAULT_DB_ALIAS]


def _set_local(name: str, value: str) -> None:
    connection.ensure_connection()
    # The raw psycopg cursor: this runs on every call, and Django's wrapper adds nothing here.
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@contextlib.contextmanager
def tenant_scope(tenant_id: int) -> Iterator[None]:
    """A transaction in which only `tenant_id`'s rows are visible and writable."""
    token = current_tenant_id.set(tenant_id)
    read_token = _read_tenant_id.set(None)
    unscoped_token = _unscoped.set(False)
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
        _unscoped.reset(unscoped_token)
        _read_tenant_id.reset(read_token)
        current_tenant_id.reset(token)


@contextlib.contextmanager
def tenant_read_scope(tenant_id: int) -> Iterator[None]:
    """Like tenant_scope, for work that only reads, in fewer round trips.

    No transaction: each statement travels with the tenant setting in one simple query, which
    PostgreSQL runs as one implicit transaction, so the setting covers that statement and dies with
    it. A one-query read costs one round trip instead of four (BEGIN, set_config, query, COMMIT).
    Each statement sees its own snapshot, as in a READ COMMITTED transaction.
    """
    if connection.in_atomic_block:
        # Inside a caller's transaction a per-statement setting would outlive the scope.
        with tenant_scope(tenant_id):
            yield
        return
    token = _read_tenant_id.set(int(tenant_id))
    unscoped_token = _unscoped.set(False)
    try:
        with connection.execute_wrapper(_with_tenant_setting):
            yield
    finally:
        _unscoped.reset(unscoped_token)
        _read_tenant_id.reset(token)


def tenant_statement(tenant_id: int, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run one statement (it may write, through CTEs) as `tenant_id`; returns its rows.

    Outside a transaction it is its own: it travels with the tenant setting in one simple query
    (as in tenant_read_scope), which PostgreSQL runs as one implicit transaction, so its writes
    commit together, or none does, in one round trip instead of five. Inside a caller's
    transaction it joins that transaction, under tenant_scope."""
    with tenant_read_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _with_tenant_setting(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    tenant_id = _read_tenant_id.get()
    if tenant_id is None:
        return execute(sql, params, many, context)
    cursor = context["cursor"].cursor
    if many or not isinstance(cursor, ClientCursor):
        # Server-side cursors and executemany cannot carry a second statement.
        raise ProgrammingError("tenant_read_scope runs single client-side statements only")
    # An int, never caller text: safe to inline, and it keeps the statement's own placeholders.
    result = execute(
        f"SELECT set_config('app.tenant_id', '{tenant_id}', true); {sql}", params, many, context
    )
    cursor.nextset()  # the caller reads its statement's rows, not set_config's
    return result


@contextlib.contextmanager
def dangerously_unscoped(*, atomic: bool = True) -> Iterator[BaseDatabaseWrapper]:
    """A transaction on the platform login, which sees every tenant's rows. Only for
    platform-wide work: API-key lookup, provisioning, platform admins, the outbox relay, demo data.

    The ORM follows by itself (ScopeRouter); raw SQL uses the connection this yields (or
    scoped_connection()). It is a separate transaction from any tenant transaction around it.
    With atomic=False each statement is its own transaction: for a single read, which then
    costs one round trip instead of three (BEGIN, the query, COMMIT)."""
    token = _unscoped.set(True)
    read_token = _read_tenant_id.set(None)
    try:
        with transaction.atomic(using=PLATFORM_DB) if atomic else contextlib.nullcontext():
            yield connections[PLATFORM_DB]
    finally:
        _read_tenant_id.reset(read_token)
        _unscoped.reset(token)


def _current(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting(%s, true), '')", [name])
        row = cursor.fetchone()
    return str(row[0]) if row else ""
