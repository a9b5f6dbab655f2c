"""What a change in the Django admin did, as audit details: each changed field with its value
(a change: from and to), secrets never (a password or a credential is recorded as set or changed,
never its value or hash). The console's audit trail shows them as fields."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import Model, QuerySet

from tenants.audit import SECRET_FIELDS

# A field whose name holds one of these is a secret, whatever the model or form.
_SECRET_WORDS = ("password", "secret", "token", "credential", "key_hash", "ciphertext")


def field_is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_FIELDS or any(word in lowered for word in _SECRET_WORDS)


def plain_value(value: Any) -> Any:
    """A value as the audit log stores it: JSON scalars, a related row by its name, several
    rows as a sorted list of names."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, QuerySet | list | tuple | set | frozenset):
        return sorted(str(plain_value(v)) for v in value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _secret_key(name: str) -> str:
    # The add-user form's password1 and password2 are one password.
    return "password" if "password" in name.lower() else name


def form_changes(form: Any, *, adding: bool) -> dict[str, Any]:
    """The fields `form` changed: on an add, each with its value; on a change, each with
    `{"from": before, "to": after}`. A secret field is named only (`password_set`,
    `password_changed`: true), never with its value."""
    details: dict[str, Any] = {}
    for name in form.changed_data:
        if field_is_secret(name):
            details[f"{_secret_key(name)}_{'set' if adding else 'changed'}"] = True
            continue
        after = plain_value(form.cleaned_data.get(name))
        if adding:
            details[name] = after
            continue
        before = plain_value(_initial(form, name))
        details[name] = {"from": before, "to": after}
    return details


def _initial(form: Any, name: str) -> Any:
    """The field's value before the change, as the form would show it (a related row rather
    than its key)."""
    value = form.initial.get(name)
    field = form.fields.get(name)
    queryset = getattr(field, "queryset", None)
    if queryset is None or value is None:
        return value
    if isinstance(value, list | tuple):
        keys = [v.pk if isinstance(v, Model) else v for v in value]
        return list(queryset.model._default_manager.filter(pk__in=keys))
    if isinstance(value, Model):
        return value
    return queryset.model._default_manager.filter(pk=value).first()


def inline_changes(formset: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """Each row an inline formset is about to add, change or delete, before it saves:
    (`add`, `change` or `delete`, the form, the details)."""
    found: list[tuple[str, Any, dict[str, Any]]] = []
    deleted = set(map(id, getattr(formset, "deleted_forms", [])))
    for form in formset.forms:
        instance = getattr(form, "instance", None)
        existing = instance is not None and instance.pk is not None
        if id(form) in deleted:
            if existing:
                found.append(("delete", form, {}))
            continue
        if not form.has_changed():
            continue
        kind = "change" if existing else "add"
        found.append((kind, form, form_changes(form, adding=not existing)))
    return found
