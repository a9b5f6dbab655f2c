"""Hand-written SQL names columns the models define: every statement kept beside a model is
checked against it, so a model change that the SQL does not follow fails here, not in production.

An INSERT names every column of its model but those it leaves out on purpose, each named here with
the reason (a new field fails until it is added to the statement or to that list); a SELECT list
and an UPDATE's SET list name only the model's columns. Where a list can be derived from the model
(effects' RETURNING list, smarteros.db's row reads), it is, and the test holds it to that."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from django.apps import apps
from django.db import models

from effects import services as effect_services
from effects.models import Effect
from integrations import deliveries
from smarteros.events import consumers, outbox
from smarteros.models import OutboxCommit, OutboxEvent

INSERT = re.compile(r"INSERT INTO (\w+)\s*\(([^)]*)\)", re.IGNORECASE)
SET = re.compile(r"(?:^|,)\s*(\w+)\s*=")  # the columns an UPDATE's SET list assigns


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


GENERATED = "the generated key"
# Each INSERT kept by hand, and the columns it leaves to the database on purpose.
STATEMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "effects insert": (
        effect_services._INSERT,
        {"id": GENERATED, "result": "NULL until done", "done_at": "NULL until done"},
    ),
    "processed event mark": (consumers._MARK, {}),
    "outbox rows": (
        outbox.outbox_rows_sql(),
        {"id": GENERATED, "sent_at": "NULL until sent", "failed_at": "NULL unless set aside"},
    ),
    "outbox commit": (
        outbox.outbox_register_sql(),
        {"seq": "numbered at commit by the deferred trigger"},
    ),
    "webhook delivery claim": (deliveries._CLAIM, {"id": GENERATED}),
}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_an_insert_names_every_column_of_its_model_but_those_left_out_on_purpose(
    name: str,
) -> None:
    statement, left_out = STATEMENTS[name]
    found = INSERT.findall(statement)
    assert found, f"{name}: no INSERT found"
    for table, listed in found:
        model = _model(table)
        named = {column.strip().strip('"') for column in listed.split(",")}
        assert named <= _columns(model), f"{name}: unknown columns {named - _columns(model)}"
        missing = _required(model) - named
        assert not missing, f"{name}: {table} requires {sorted(missing)}"
        assert _columns(model) - named == set(left_out), (
            f"{name}: {table}'s columns not in the statement are {sorted(_columns(model) - named)}"
            f"; those left out on purpose are {sorted(left_out)}"
        )


def test_the_effect_column_list_is_the_models() -> None:
    listed = [c.strip().strip('"') for c in effect_services._COLUMNS.split(",")]
    assert listed == [str(f.column) for f in Effect._meta.concrete_fields]


def test_the_relay_reads_columns_of_the_outbox() -> None:
    # Deliberately not every column: the relay reads what it publishes (its Row), nothing else.
    read = re.findall(r"\b([oc])\.(\w+)", outbox._PENDING.split(" FROM ")[0])
    assert len(read) == len(get_args(outbox.Row))
    for alias, column in read:
        model = OutboxEvent if alias == "o" else OutboxCommit
        assert column in _columns(model), f"{model.__name__} has no column {column}"


UPDATES: dict[str, tuple[type[models.Model], str]] = {
    "effect claim": (Effect, effect_services._CLAIM),
    "effects done": (Effect, effect_services._DONE),
    "effect release": (Effect, effect_services._RELEASE),
    "outbox requeue": (OutboxEvent, outbox._REQUEUE.split("DO UPDATE", 1)[1]),
}


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_an_update_sets_columns_of_its_model(name: str) -> None:
    model, statement = UPDATES[name]
    assigned = SET.findall(statement.split(" SET ", 1)[1].split(" WHERE ")[0])
    assert assigned, f"{name}: no assignment found"
    assert set(assigned) <= _columns(model), f"{name}: unknown {set(assigned) - _columns(model)}"
