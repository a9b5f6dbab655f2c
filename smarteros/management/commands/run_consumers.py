import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.events.groups import (
    UnknownGroups,
    consumer_groups_parse,
    consumer_threads_start,
    consumer_threads_stop,
    consumer_workers,
)
from smarteros.infra.heartbeat import Heartbeat


class Command(BaseCommand):
    help = (
        "Run Kafka consumer groups (all, or those named) without Celery; "
        "`celery -A smarteros worker --consumer-groups ...` hosts the same workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("groups", nargs="*", help="Consumer groups to run (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            groups = consumer_groups_parse(options["groups"])
        except UnknownGroups as exc:
            raise CommandError(str(exc)) from None
        workers = consumer_workers(groups)

        def on_signal(*_: object) -> None:
            for worker in workers:
                worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        threads = consumer_threads_start(workers)
        self.stdout.write(f"Consuming: {', '.join(groups)}")
        heartbeat = Heartbeat("consumers").start()
        try:
            for thread in threads:
                thread.join()
        finally:
            heartbeat.stop()
        consumer_threads_stop(workers, threads)
