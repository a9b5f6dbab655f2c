from django.db import migrations

from tenants.rls import enable_rls


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_n8ntrigger_whatsappmessage")]
    operations = enable_rls(
        "integrations_integrationconnection", "integrations_whatsappmessage", "integrations_n8ntrigger"
    )
