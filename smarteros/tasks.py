from celery import shared_task

from smarteros.events.consumers import processed_events_prune
from smarteros.events.outbox import outbox_prune


@shared_task(name="smarteros.events_prune")
def events_prune() -> dict[str, int]:
    """Hourly: drop published outbox rows and processed-event marks past their retention."""
    return {"outbox": outbox_prune(), "processed": processed_events_prune()}
