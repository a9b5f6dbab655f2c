import signal
from typing import Any

from django.core.management.base import BaseCommand

from smarteros.events.outbox import run_relay
from smarteros.infra.heartbeat import Heartbeat


class Command(BaseCommand):
    help = "Publish outbox events to Kafka with an idempotent producer; several may run at once."

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Outbox relay running.")
        heartbeat = Heartbeat("relay").start()
        try:
            run_relay(stop=lambda: stopping)
        finally:
            heartbeat.stop()
