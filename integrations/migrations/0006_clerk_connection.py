# Clerk joins the providers a tenant connects (its webhooks, signed by Svix).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0005_whatsapp_message_status"),
    ]

    operations = [
        migrations.AlterField(
            model_name="integrationconnection",
            name="provider",
            field=models.CharField(
                choices=[
                    ("shopify", "Shopify"),
                    ("whatsapp", "Whatsapp"),
                    ("n8n", "N8N"),
                    ("clerk", "Clerk"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="provider",
            field=models.CharField(
                choices=[
                    ("shopify", "Shopify"),
                    ("whatsapp", "Whatsapp"),
                    ("n8n", "N8N"),
                    ("clerk", "Clerk"),
                ],
                max_length=20,
            ),
        ),
    ]
