from celery import shared_task

from tenants.provisioning import tenants_deprovision_due


@shared_task(name="tenants.deprovision_due")
def deprovision_due() -> list[str]:
    """Hourly: remove the resources of tenants whose deletion grace period has passed."""
    return tenants_deprovision_due()
