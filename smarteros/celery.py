"""The Celery app; tasks live in each domain app's `tasks.py`. Its workers also host the Kafka
consumer groups (smarteros/worker.py)."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from smarteros.worker import CONSUMER_GROUPS_OPTION, ConsumerGroups

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

app = Celery("smarteros")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.user_options["worker"].add(CONSUMER_GROUPS_OPTION)
app.steps["worker"].add(ConsumerGroups)

# Started when a worker is ready (not in beat or in web processes that import the app).
_heartbeat: Any = None


@worker_ready.connect
def _start_heartbeat(sender: object, **kwargs: object) -> None:
    from smarteros.infra.heartbeat import Heartbeat

    global _heartbeat
    _heartbeat = Heartbeat("worker").start()


@worker_shutdown.connect
def _stop_heartbeat(sender: object, **kwargs: object) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
