"""The Celery app; tasks live in each domain app's `tasks.py`. Its workers also host the Kafka
consumer groups (smarteros/worker.py)."""

import os

from celery import Celery

from smarteros.worker import CONSUMER_GROUPS_OPTION, ConsumerGroups

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

app = Celery("smarteros")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.user_options["worker"].add(CONSUMER_GROUPS_OPTION)
app.steps["worker"].add(ConsumerGroups)
