from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0004_webhook_delivery")]

    operations = [
        migrations.AddField(
            model_name="n8ntrigger",
            name="auth_secret_ciphertext",
            field=models.TextField(blank=True),
        ),
    ]
