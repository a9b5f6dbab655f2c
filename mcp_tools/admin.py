from typing import Any

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

from mcp_tools.models import AgentSession, UpstreamServer
from mcp_tools.upstream_network import url_refusal
from tenants.admin import AuditedAdmin, TenantScopedAdmin


class UpstreamServerForm(forms.ModelForm):
    url = forms.URLField(required=False, max_length=2000, assume_scheme="https")
    stdio_entry = forms.ChoiceField(
        required=False,
        help_text="Platform-defined stdio server (UPSTREAM_MCP_STDIO_SERVERS); superusers only.",
    )

    class Meta:
        model = UpstreamServer
        fields = ["tenant", "name", "transport", "url", "stdio_entry"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("stdio_entry")
        if isinstance(field, forms.ChoiceField):
            entries = sorted(settings.UPSTREAM_MCP_STDIO_SERVERS)
            field.choices = [("", "---------")] + [(e, e) for e in entries]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        transport = data.get("transport") or (self.instance.transport if self.instance else "")
        if transport == UpstreamServer.Transport.STDIO:
            if not data.get("stdio_entry"):
                self.add_error("stdio_entry", "choose the platform-defined stdio server")
            data["url"] = ""
        elif "url" in data:
            reason = url_refusal(data["url"]) if data["url"] else "required for http"
            if reason:
                self.add_error("url", reason)
            data["stdio_entry"] = ""
        return data


@admin.register(UpstreamServer)
class UpstreamServerAdmin(AuditedAdmin):
    form = UpstreamServerForm
    list_display = ["tenant", "name", "transport", "url", "stdio_entry", "updated_at"]
    list_filter = ["tenant", "transport"]
    # Credentials are set through agent_register_mcp_server; here only their ciphertext exists.
    exclude = ["credentials_ciphertext"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not getattr(request.user, "is_superuser", False):
            # Only platform admins decide that a tenant may run a platform stdio server.
            readonly += ["transport", "stdio_entry"]
        return readonly


@admin.register(AgentSession)
class AgentSessionAdmin(TenantScopedAdmin):
    list_display = ["id", "tenant", "label", "created_at"]
    list_filter = ["tenant"]


# The toolkit registers admins for its clients and tokens; tokens act for tenants, and those
# admins are not tenant-scoped, so they are not offered. Consents are managed on the console.
for _model in apps.get_app_config("oauth2_provider").get_models():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
