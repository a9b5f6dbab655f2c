"""Hand-written SQL names columns the models define: every statement kept beside a model is
checked against it, so a model change that the SQL does not follow fails here, not in production.

An INSERT must name only the model's columns and every column that is NOT NULL without a
default; a SELECT/RETURNING list must name only the model's columns."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.db import models

from effects import services as effect_services
from integrations import deliveries
from smarteros.events import outbox

INSERT = re.compile(r"INSERT INTO (\w+)\s*\(([^)]*)\)", re.IGNORECASE)


def _model(table: str) -> type[models.Model]:
    for model in apps.get_models():
        if model._meta.db_table == table:
            return model
    raise AssertionError(f"no model has the table {table}")


def _columns(model: type[models.Model]) -> set[str]:
    return {str(field.column) for field in model._meta.concrete_fields}


def _required(model: type[models.Model]) -> set[str]:
    """Columns an INSERT must give: NOT NULL, no database default, not the generated key."""
    return {
        str(field.column)
        for field in model._meta.concrete_fields
        if not field.null
        and not field.primary_key
        and getattr(field, "db_default", models.NOT_PROVIDED) is models.NOT_PROVIDED
    }


STATEMENTS = {
    "effects insert": effect_services._INSERT,
    "outbox rows": outbox.outbox_rows_sql(),
    "outbox commit": outbox.outbox_register_sql(),
    "webhook delivery claim": deliveries._CLAIM,
}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_an_insert_names_the_models_columns_and_every_required_one(name: str) -> None:
    statement = STATEMENTS[name]
    found = INSERT.findall(statement)
    assert found, f"{name}: no INSERT found"
    for table, listed in found:
        model = _model(table)
        named = {column.strip() for column in listed.split(",")}
        assert named <= _columns(model), f"{name}: unknown columns {named - _columns(model)}"
        missing = _required(model) - named
        assert not missing, f"{name}: {table} requires {sorted(missing)}"


def test_the_effect_column_list_is_the_models() -> None:
    from effects.models import Effect

    listed = {c.strip() for c in effect_services._COLUMNS.split(",")}
    assert listed <= _columns(Effect), listed - _columns(Effect)
    # What the list leaves out is deliberate: scheduling the readers never use (created_at and
    # done_at are read: a repeated idempotent call answers them).
    assert _columns(Effect) - listed == {"not_before", "updated_at"}
