"""Database helpers shared by the apps."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection, connections, router
from django.db.models import Model

M = TypeVar("M", bound=Model)


@functools.cache
def _row_statement(
    model: type[Model], keys: tuple[str, ...]
) -> tuple[str, list[str], list[tuple[int, list[Any]]]]:
    """SELECT of every concrete column where the `keys` columns (attnames) equal parameters, the
    field names, and each column's from-database converters (JSON, backend-specific types), as
    Django's compiler would apply."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(str(f.column)) for f in fields)
    by_attname = {f.attname: f for f in fields}
    where = " AND ".join(f"{quote(str(by_attname[key].column))} = %s" for key in keys)
    sql = f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {where}"
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if found:
            converters.append((index, [(converter, column) for converter in found]))
    return sql, [f.attname for f in fields], converters


def row_where(model: type[M], **equals: Any) -> M | None:
    """The row of `model` whose fields (attnames, a unique set) equal `equals`, or None: like
    `model.objects.filter(**equals).first()` without running Django's query compiler each call.

    For the hottest single-row reads (every tools/call reads its tenant row, every webhook its
    tenant and connection): the compiler builds the same SQL each time and costs several times
    the database round trip. The statement is built once per model and keys from its fields, so
    it follows schema changes; it runs on the connection the ORM would use (the scope's login,
    row-level security applies).
    """
    if nulls := [name for name, value in equals.items() if value is None]:
        raise ValueError(f"row_where compares with =, which no NULL matches: {nulls}")
    sql, attnames, converters = _row_statement(model, tuple(equals))
    db = connections[router.db_for_read(model)]
    with db.cursor() as cursor:
        cursor.execute(sql, list(equals.values()))
        row = cursor.fetchone()
    if row is None:
        return None
    if converters:
        values = list(row)
        for index, chain in converters:
            for converter, column in chain:
                values[index] = converter(values[index], column, db)
        row = values
    return model.from_db(db.alias, attnames, row)


def row_by_pk(model: type[M], pk: Any) -> M:
    """`model.objects.get(pk=pk)`, as row_where reads it."""
    instance = row_where(model, **{model._meta.pk.attname: pk})  # type: ignore[union-attr]
    if instance is None:
        raise model.DoesNotExist(f"{model.__name__} matching pk={pk!r} does not exist.")  # type: ignore[attr-defined]
    return instance
