import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.events.consumers import GroupWorker, registrations
from smarteros.infra.heartbeat import Heartbeat
from telemetry.counter import GROUP as COUNTER_GROUP
from telemetry.counter import TopicCounter
from telemetry.sink import GROUP as SINK_GROUP
from telemetry.sink import TelemetrySink


class Command(BaseCommand):
    help = "Run Kafka consumer groups (all, or those named); scale out by starting more."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("groups", nargs="*", help="Consumer groups to run (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        regs = registrations()
        known = {r.group for r in regs} | {SINK_GROUP, COUNTER_GROUP}
        groups = sorted(set(options["groups"]) or known)
        unknown = set(groups) - known
        if unknown:
            raise CommandError(
                f"unknown consumer group(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        workers: list[Any] = [
            GroupWorker(g, [r for r in regs if r.group == g])
            for g in groups
            if g not in (SINK_GROUP, COUNTER_GROUP)
        ]
        if SINK_GROUP in groups:
            workers.append(TelemetrySink())
        if COUNTER_GROUP in groups:
            workers.append(TopicCounter())

        def on_signal(*_: object) -> None:
            for worker in workers:
                worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        threads = [
            threading.Thread(target=w.run, name=type(w).__name__, daemon=True) for w in workers
        ]
        for thread in threads:
            thread.start()
        self.stdout.write(f"Consuming: {', '.join(groups)}")
        heartbeat = Heartbeat("consumers").start()
        try:
            for thread in threads:
                thread.join()
        finally:
            heartbeat.stop()
