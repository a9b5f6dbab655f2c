from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0006_clerk_connection")]

    operations = [
        migrations.AddField(
            model_name="n8ntrigger",
            name="auth_secret_ciphertext",
            field=models.TextField(blank=True),
        ),
    ]
