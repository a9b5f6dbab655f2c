"""Which event types a block of code queued: the executor compares them with the `emits` an
operation declares, so the declaration (shown to clients and in the snapshot) cannot drift from
what the operation really publishes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_collected: ContextVar[list[str] | None] = ContextVar("emitted_event_types", default=None)


@contextmanager
def emitted_event_types() -> Iterator[list[str]]:
    """A list that receives the type of every event queued in the outbox inside the block."""
    collected: list[str] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def note_emitted(types: Iterable[str]) -> None:
    """Called by the outbox for every event it queues."""
    collected = _collected.get()
    if collected is not None:
        collected.extend(types)
