from django.db import migrations

from tenants.rls import enable_rls


class Migration(migrations.Migration):
    dependencies = [("smarteros", "0001_initial"), ("tenants", "0003_row_level_security")]
    operations = enable_rls("smarteros_outboxevent")
