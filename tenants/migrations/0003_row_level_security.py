from django.db import migrations

from tenants.rls import enable_rls


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_tenant_provisioning_error")]
    operations = enable_rls("tenants_apikey", "tenants_membership")
