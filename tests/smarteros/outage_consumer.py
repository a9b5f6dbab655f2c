"""A consumer process for the outage tests: one GroupWorker whose handler needs the database,
against DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS from its environment. Stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from smarteros.events.consumers import GroupWorker, Registration  # noqa: E402
from smarteros.events.envelope import Envelope  # noqa: E402

GROUP = "outage"


def record(envelope: Envelope) -> None:
    with connection.cursor() as cursor:  # the handler's own work needs the database too
        cursor.execute("SELECT count(*) FROM smarteros_processedevent")


worker = GroupWorker(
    GROUP,
    [Registration("tenant.provisioning", "*", GROUP, record)],
    retry_delays=(0.05, 0.1),
    **{"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
)
signal.signal(signal.SIGTERM, worker.stop)
worker.run()
