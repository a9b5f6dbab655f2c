"""The Celery worker hosts the Kafka consumer groups: a bootstep starts each group's consume loop
in a thread when the worker starts and stops them (commit, close) when it stops.

`celery -A smarteros worker` runs every group; `--consumer-groups flow-whatsapp-bot,telemetry-sink`
only those; `--consumer-groups none` makes a pure task worker. More workers running a group share
its partitions (Kafka's group rebalancing).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from click import Option

log = logging.getLogger(__name__)

CONSUMER_GROUPS_OPTION = Option(
    ("--consumer-groups",),
    default="all",
    show_default=True,
    help="Kafka consumer groups this worker runs: all, none, or a comma-separated list.",
)


class ConsumerGroups(bootsteps.StartStopStep):
    """Runs the selected consumer groups inside the worker process."""

    # After the pool: prefork children are forked before any consume thread exists.
    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, consumer_groups: str = "all", **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        from smarteros.events.groups import UnknownGroups, consumer_groups_parse

        try:
            self.groups = consumer_groups_parse(consumer_groups)
        except UnknownGroups as exc:
            raise SystemExit(f"--consumer-groups: {exc}") from None
        self.workers: list[Any] = []
        self.threads: list[threading.Thread] = []

    def start(self, worker: Any) -> None:
        from smarteros.events.groups import consumer_threads_start, consumer_workers

        if not self.groups:
            return
        self.workers = consumer_workers(self.groups)
        self.threads = consumer_threads_start(self.workers)
        log.info("consuming: %s", ", ".join(self.groups))

    def stop(self, worker: Any) -> None:
        from smarteros.events.groups import consumer_threads_stop

        consumer_threads_stop(self.workers, self.threads)
        self.workers, self.threads = [], []

    def terminate(self, worker: Any) -> None:
        self.stop(worker)
