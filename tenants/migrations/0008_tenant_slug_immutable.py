import django.core.validators
from django.db import migrations, models

# A slug names the tenant's Kafka topics ({slug}.*), its Vault key and namespace and its webhook
# URLs: once provisioning has started, renaming it would orphan all of them. The database refuses
# it, whatever path the update takes (admin, console, shell).
FUNCTION = """
CREATE OR REPLACE FUNCTION tenants_slug_immutable() RETURNS trigger AS $$
BEGIN
    IF NEW.slug IS DISTINCT FROM OLD.slug AND OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'tenant slug % cannot change once provisioned (its topics, Vault key and webhook URLs are named by it)', OLD.slug
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_apikey_scopes_tenant_vault_namespace")]

    operations = [
        migrations.AlterField(
            model_name="tenant",
            name="slug",
            field=models.CharField(
                help_text="Names the tenant's topics, Vault key and webhook URLs: it cannot "
                "change once provisioning has started.",
                max_length=40,
                unique=True,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
                        "A tenant slug is 3-40 characters: lowercase letters, digits and "
                        "hyphens, starting with a letter and not ending with a hyphen.",
                    )
                ],
            ),
        ),
        migrations.RunSQL(
            sql=[
                FUNCTION,
                "CREATE TRIGGER tenants_slug_immutable BEFORE UPDATE OF slug ON tenants_tenant "
                "FOR EACH ROW EXECUTE FUNCTION tenants_slug_immutable()",
            ],
            reverse_sql=[
                "DROP TRIGGER IF EXISTS tenants_slug_immutable ON tenants_tenant",
                "DROP FUNCTION IF EXISTS tenants_slug_immutable()",
            ],
        )
    ]
