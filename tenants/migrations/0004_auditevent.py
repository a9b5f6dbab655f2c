import django.db.models.deletion
from django.db import migrations, models

from tenants.rls import enable_rls


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_row_level_security")]

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("actor", models.CharField(help_text="user:<username> or key:<prefix>", max_length=200)),
                ("action", models.CharField(max_length=100)),
                ("target", models.CharField(blank=True, max_length=300)),
                ("details", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("tenant", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                             related_name="+", to="tenants.tenant")),
            ],
            options={"ordering": ["-created_at"]},
        ),
        *enable_rls("tenants_auditevent"),
    ]
