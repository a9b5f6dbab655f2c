"""Which consumer groups exist, and the workers that run them: one place for the Celery worker's
bootstep and the `run_consumers` command."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)


class ConsumerWorker(Protocol):
    def run(self) -> None: ...

    def stop(self, *args: object) -> None: ...


class UnknownGroups(ValueError):
    """Names that are no consumer group; the message lists the known ones."""


def consumer_groups_known() -> list[str]:
    """Every consumer group: the flows' (from the handlers' registrations), the telemetry sink's
    and the topic counter's."""
    from smarteros.events.consumers import registrations
    from telemetry.counter import GROUP as COUNTER_GROUP
    from telemetry.sink import GROUP as SINK_GROUP

    return sorted({r.group for r in registrations()} | {SINK_GROUP, COUNTER_GROUP})


def consumer_groups_parse(spec: str | Iterable[str] | None) -> list[str]:
    """`"all"`, None or nothing -> every group; `"none"` -> no group; otherwise the named groups
    (comma-separated or a list), each checked against the known ones."""
    names = [spec] if isinstance(spec, str) else list(spec or [])
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    known = consumer_groups_known()
    if not wanted or wanted == {"all"}:
        return known
    if wanted == {"none"}:
        return []
    unknown = wanted - set(known)
    if unknown:
        raise UnknownGroups(
            f"unknown consumer group(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(known)} (or all, none)"
        )
    return sorted(wanted)


def consumer_workers(groups: Iterable[str]) -> list[ConsumerWorker]:
    """One worker per group, ready to `run()` in a thread of its own."""
    from smarteros.events.consumers import GroupWorker, registrations
    from telemetry.counter import GROUP as COUNTER_GROUP
    from telemetry.counter import TopicCounter
    from telemetry.sink import GROUP as SINK_GROUP
    from telemetry.sink import TelemetrySink

    regs = registrations()
    workers: list[ConsumerWorker] = []
    for group in groups:
        if group == SINK_GROUP:
            workers.append(TelemetrySink())
        elif group == COUNTER_GROUP:
            workers.append(TopicCounter())
        else:
            workers.append(GroupWorker(group, [r for r in regs if r.group == group]))
    return workers


def consumer_threads_start(workers: list[ConsumerWorker]) -> list[threading.Thread]:
    """Start each worker's consume loop in a daemon thread of its own."""
    threads = [
        threading.Thread(target=_run_logged, args=(w,), name=f"consume-{_name(w)}", daemon=True)
        for w in workers
    ]
    for thread in threads:
        thread.start()
    return threads


def consumer_threads_stop(
    workers: list[ConsumerWorker], threads: list[threading.Thread], *, timeout: float = 30.0
) -> None:
    """Ask every worker to stop, then wait for their threads (they commit and close first)."""
    for worker in workers:
        worker.stop()
    for thread in threads:
        thread.join(timeout)


def _name(worker: ConsumerWorker) -> str:
    return str(getattr(worker, "group", type(worker).__name__))


def _run_logged(worker: ConsumerWorker) -> None:
    try:
        worker.run()
    except Exception:
        log.exception("consumer %s stopped on an error", _name(worker))
        raise
