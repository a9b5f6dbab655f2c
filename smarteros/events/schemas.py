"""A JSON Schema per event type: the `data` of every envelope is validated against its type's
model by producers before writing and by consumers after reading.

Each domain registers its event types with `event_type(...)` in its `events.py`; `schema_for`
imports those modules on first use. A field can be declared secret or personal
(`Field(json_schema_extra=SECRET)` / `PERSONAL`): the topic viewer masks it (see
telemetry/topics/masking.py).
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

# JSON Schema marks for `Field(json_schema_extra=...)`: a credential (masked for everyone), and
# contact data such as a phone number (masked unless the tenant turned that off).
SECRET: dict[str, Any] = {"x-secret": True}
PERSONAL: dict[str, Any] = {"x-personal": True}

_types: dict[str, type[BaseModel]] = {}
_discovered = False
_lock = threading.Lock()


class EventData(BaseModel):
    """Base of event payload models; extra keys are allowed so producers can add fields first."""

    model_config = ConfigDict(extra="allow")


class UnknownEventType(ValueError):
    pass


class InvalidEvent(ValueError):
    pass


class EventTooLarge(InvalidEvent):
    """The event is larger than its topic accepts (the catalog's max.message.bytes): surfaces
    answer 413. Raised before anything is written."""

    def __init__(self, *, topic: str, size: int, limit: int) -> None:
        super().__init__(f"event of {size} bytes exceeds the {limit}-byte limit of topic {topic}")
        self.topic, self.size, self.limit = topic, size, limit


def event_type(name: str) -> Any:
    """Class decorator: register `cls` as the data model of events of type `name`."""

    def register(cls: type[BaseModel]) -> type[BaseModel]:
        existing = _types.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {name!r} is registered twice")
        _types[name] = cls
        return cls

    return register


def _discover() -> None:
    global _discovered
    if not _discovered:
        with _lock:
            if not _discovered:
                from django.utils.module_loading import autodiscover_modules

                autodiscover_modules("events")
                _discovered = True


def schema_for(name: str) -> type[BaseModel]:
    _discover()
    try:
        return _types[name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {name!r}") from None


def event_types() -> dict[str, dict[str, Any]]:
    """Every event type's JSON Schema, by name."""
    _discover()
    return {name: model.model_json_schema() for name, model in sorted(_types.items())}


def validate_event_data(name: str, data: dict[str, Any]) -> None:
    try:
        schema_for(name).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidEvent(f"{name} data does not match its schema: {problems}") from None
