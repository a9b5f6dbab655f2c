"""Database helpers shared by the apps."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection, connections, router
from django.db.models import Model

M = TypeVar("M", bound=Model)


@functools.cache
def _by_pk_statement(model: type[Model]) -> tuple[str, list[str], list[tuple[int, list[Any]]]]:
    """SELECT of every concrete column by primary key, the field names, and each column's
    from-database converters (JSON, backend-specific types), as Django's compiler would apply."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(str(f.column)) for f in fields)
    pk_column = str(model._meta.pk.column)  # type: ignore[union-attr]
    sql = f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {quote(pk_column)} = %s"
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if found:
            converters.append((index, [(converter, column) for converter in found]))
    return sql, [f.attname for f in fields], converters


def row_by_pk(model: type[M], pk: Any) -> M:
    """`model.objects.get(pk=pk)` without running Django's query compiler on every call.

    For the hottest single-row reads (every tools/call of a tenant reads its tenant row): the
    compiler builds the same SQL each time and costs several times the database round trip.
    The statement is built once per model from its fields, so it follows schema changes; it runs
    on the connection the ORM would use (row-level security applies).
    """
    sql, attnames, converters = _by_pk_statement(model)
    connection = connections[router.db_for_read(model)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"{model.__name__} matching pk={pk!r} does not exist.")  # type: ignore[attr-defined]
    if converters:
        values = list(row)
        for index, chain in converters:
            for converter, column in chain:
                values[index] = converter(values[index], column, connection)
        row = values
    return model.from_db(connection.alias, attnames, row)
