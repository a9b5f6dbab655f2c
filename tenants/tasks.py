from celery import shared_task

from tenants.provisioning import tenants_deprovision_due


@shared_task(name="tenants.deprovision_due")
def deprovision_due() -> list[str]:
    """Hourly: remove the resources of tenants whose deletion grace period has passed."""
    return tenants_deprovision_due()


@shared_task(name="tenants.console_provision")
def console_provision(tenant_id: int, actor: str) -> None:
    """Provision a tenant created in the console, publishing each step to its page."""
    from tenants.console.progress import console_provision as run

    run(tenant_id=tenant_id, actor=actor)
