import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from smarteros.events.consumers import GroupWorker, registrations


class Command(BaseCommand):
    help = "Run Kafka consumer groups (all, or those named); scale out by starting more."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("groups", nargs="*", help="Consumer groups to run (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        import signal

        regs = registrations()
        groups = sorted(set(options["groups"]) or {r.group for r in regs})
        workers = [GroupWorker(g, [r for r in regs if r.group == g]) for g in groups]
        workers = [w for w in workers if w.regs]
        stop = threading.Event()

        def on_signal(*_: object) -> None:
            stop.set()
            for worker in workers:
                worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if not workers:
            self.stderr.write("No consumer handlers are registered; waiting for a stop signal.")
            stop.wait()
            return
        threads = [threading.Thread(target=w.run, name=w.group, daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        listing = ", ".join(f"{w.group} ({', '.join(w.topics())})" for w in workers)
        self.stdout.write(f"Consuming: {listing}")
        for thread in threads:
            thread.join()
