import json
from typing import Any

from django import forms
from django.contrib import admin

from integrations.connections import connection_config_check
from integrations.models import IntegrationConnection, N8nTrigger, WhatsAppMessage
from integrations.n8n.topics import FORWARDED_TOPICS
from integrations.n8n.triggers import TRIGGER_AUTH_HEADER, trigger_secret_issue
from integrations.services import integration_connect
from tenants.admin import AuditedAdmin, ShowsSecretOnce, TenantScopedAdmin
from tenants.audit import audit_record


class IntegrationConnectionForm(forms.ModelForm):
    credentials = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text='Write-only JSON object, e.g. {"access_token": "..."}; stored as Vault ciphertext. '
        "Leave empty to keep the stored credentials.",
    )

    class Meta:
        model = IntegrationConnection
        fields = ["tenant", "provider", "config"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        provider, config = cleaned.get("provider"), cleaned.get("config")
        if provider and config is not None:
            try:
                cleaned["config"] = connection_config_check(provider=provider, config=config)
            except ValueError as exc:
                self.add_error("config", str(exc))
        return cleaned

    def clean_credentials(self) -> dict[str, str] | None:
        raw = self.cleaned_data.get("credentials")
        if not raw:
            if not (self.instance and self.instance.credentials_ciphertext):
                raise forms.ValidationError("Credentials are required for a new connection.")
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Credentials must be a JSON object.") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise forms.ValidationError("Credentials must be a JSON object of strings.")
        return value


@admin.register(IntegrationConnection)
class IntegrationConnectionAdmin(AuditedAdmin):
    form = IntegrationConnectionForm
    list_display = ["tenant", "provider", "external_id", "updated_at"]
    list_filter = ["provider"]

    def save_model(self, request: Any, obj: IntegrationConnection, form: Any, change: bool) -> None:
        credentials = form.cleaned_data.get("credentials")
        if credentials is None:
            super().save_model(request, obj, form, change)
            return
        try:
            saved = integration_connect(
                tenant=obj.tenant, provider=obj.provider, config=obj.config, credentials=credentials
            )
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        obj.pk, obj.credentials_ciphertext = saved.pk, saved.credentials_ciphertext
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="integration.connect",
            tenant=obj.tenant,
            target=obj.provider,
        )


@admin.register(WhatsAppMessage)
class WhatsAppMessageAdmin(TenantScopedAdmin):
    list_display = ["tenant", "phone", "direction", "status", "created_at"]
    list_filter = ["tenant", "direction", "status"]


class N8nTriggerForm(forms.ModelForm):
    topic = forms.ChoiceField(choices=[(t, t) for t in FORWARDED_TOPICS])

    class Meta:
        model = N8nTrigger
        fields = ["tenant", "topic", "event_type", "webhook_path"]


@admin.register(N8nTrigger)
class N8nTriggerAdmin(ShowsSecretOnce, TenantScopedAdmin):
    form = N8nTriggerForm
    list_display = ["tenant", "topic", "event_type", "webhook_path", "has_header_secret"]

    @admin.display(boolean=True, description="header secret")
    def has_header_secret(self, obj: N8nTrigger) -> bool:
        return bool(obj.auth_secret_ciphertext)

    def save_model(self, request: Any, obj: N8nTrigger, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not obj.auth_secret_ciphertext:
            # Shown once, as n8n_create_trigger does: only its ciphertext is kept.
            secret = trigger_secret_issue(obj)
            self.secret_issued(
                request,
                f"Header Auth for the workflow's Webhook node: {TRIGGER_AUTH_HEADER}",
                secret,
            )
