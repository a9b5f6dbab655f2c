from django.db import migrations

from tenants.rls import enable_rls


class Migration(migrations.Migration):
    dependencies = [("effects", "0001_initial")]

    operations = enable_rls("effects_effect")
