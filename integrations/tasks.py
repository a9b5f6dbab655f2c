from celery import shared_task

from integrations.deliveries import deliveries_prune


@shared_task(name="integrations.webhook_deliveries_prune")
def webhook_deliveries_prune() -> int:
    """Hourly: forget webhook delivery ids past WEBHOOK_DEDUPE_DAYS."""
    return deliveries_prune()
