from django.db import migrations

from tenants.rls import enable_rls


class Migration(migrations.Migration):
    dependencies = [("mcp_tools", "0001_initial")]
    operations = enable_rls("mcp_tools_upstreamserver", "mcp_tools_agentsession")
