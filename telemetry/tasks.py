from celery import shared_task

from telemetry.retention import telemetry_retention_enforce


@shared_task(name="telemetry.enforce_retention")
def enforce_retention() -> dict[str, int]:
    """Every six hours: drop and trim telemetry past each tenant's retention."""
    return telemetry_retention_enforce()
