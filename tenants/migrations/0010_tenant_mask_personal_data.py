from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0009_tenant_status_before_deletion")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="mask_personal_data",
            field=models.BooleanField(
                default=True,
                help_text="Mask e-mail addresses and phone numbers in the topic viewer and its "
                "exports. Credentials, card numbers and national ids are masked whatever this "
                "says.",
            ),
        ),
    ]
