from django.contrib import admin

from mcp_tools.models import AgentSession, UpstreamServer
from tenants.admin import AuditedAdmin, TenantScopedAdmin


@admin.register(UpstreamServer)
class UpstreamServerAdmin(AuditedAdmin):
    list_display = ["tenant", "name", "transport", "url", "command", "updated_at"]
    list_filter = ["tenant", "transport"]
    # Credentials are set through agent_register_mcp_server; here only their ciphertext exists.
    exclude = ["credentials_ciphertext"]


@admin.register(AgentSession)
class AgentSessionAdmin(TenantScopedAdmin):
    list_display = ["id", "tenant", "label", "created_at"]
    list_filter = ["tenant"]
