from django.db import migrations, models

LIVE = ("pending", "provisioning", "active", "suspended")


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    """A deletion pending before the status was stored: the latest request's `from` that was
    not itself `deleted` (a second request recorded `from = deleted`) is what it interrupted;
    with none, the lifecycle reads it as suspended (only the platform brings it back)."""
    Tenant = apps.get_model("tenants", "Tenant")
    AuditEvent = apps.get_model("tenants", "AuditEvent")
    for tenant in Tenant.objects.filter(status="deleted", deprovisioned_at__isnull=True):
        requests = AuditEvent.objects.filter(
            tenant_id=tenant.pk, action="tenant.delete_requested"
        ).order_by("-created_at", "-pk")
        for request in requests:
            before = (request.details or {}).get("from")
            if before in LIVE:
                Tenant.objects.filter(pk=tenant.pk).update(status_before_deletion=before)
                break


class Migration(migrations.Migration):
    dependencies = [("tenants", "0008_tenant_slug_immutable")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="status_before_deletion",
            field=models.CharField(
                blank=True,
                choices=[
                    ("pending", "Pending"),
                    ("provisioning", "Provisioning"),
                    ("active", "Active"),
                    ("suspended", "Suspended"),
                    ("deleted", "Deleted"),
                ],
                editable=False,
                help_text="While a deletion is pending: the status it interrupted, which "
                "cancelling restores (tenants.lifecycle).",
                max_length=20,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
