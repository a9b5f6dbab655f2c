# The LLM that writes bot replies joins the providers a tenant connects (integrations/llm).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_n8n_trigger_header_auth"),
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
                    ("llm", "Llm"),
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
                    ("llm", "Llm"),
                ],
                max_length=20,
            ),
        ),
    ]
