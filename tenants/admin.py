from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from tenants.audit import audit_record
from tenants.models import ApiKey, AuditEvent, Membership, Tenant
from tenants.selectors import tenant_ids_of
from tenants.services import api_key_create, api_key_revoke


class TenantScopedAdmin(admin.ModelAdmin):
    """Admin for tenant-owned rows. Row-level security already limits the rows a tenant admin
    sees; this also keeps other tenants out of the filters and tenant choices."""

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if getattr(request.user, "is_superuser", False):
            return filters
        return [f for f in filters if f != "tenant"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant" and not getattr(request.user, "is_superuser", False):
            kwargs["queryset"] = Tenant.objects.filter(
                pk__in=tenant_ids_of(user_id=int(request.user.pk or 0), roles=("admin",))
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AuditedAdmin(TenantScopedAdmin):
    """Records every change a person makes here in the audit log."""

    def _tenant_of(self, obj: Any) -> Tenant | None:
        return obj if isinstance(obj, Tenant) else getattr(obj, "tenant", None)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="admin.change" if change else "admin.add",
            tenant=self._tenant_of(obj),
            target=f"{obj._meta.label}:{obj.pk}",
            details={"fields": sorted(form.changed_data)},
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="admin.delete",
            tenant=self._tenant_of(obj),
            target=f"{obj._meta.label}:{obj.pk}",
        )
        super().delete_model(request, obj)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Tenant)
class TenantAdmin(AuditedAdmin):
    list_display = ["slug", "name", "status", "plan", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["slug", "name"]
    readonly_fields = ["provisioning_error", "deleted_at", "deprovisioned_at"]
    inlines = [MembershipInline]
    actions = ["provision", "request_deletion"]

    @admin.action(description="Provision (or finish provisioning) selected tenants")
    def provision(self, request: HttpRequest, queryset: Any) -> None:
        from tenants.provisioning import ProvisioningFailed, tenant_provision

        for tenant in queryset:
            try:
                report = tenant_provision(tenant=tenant)
            except ProvisioningFailed as exc:
                messages.error(request, str(exc))
                continue
            note = (
                f" First API key (shown once): {report.first_api_key}"
                if report.first_api_key
                else ""
            )
            messages.success(request, f"{tenant.slug} provisioned.{note}")

    @admin.action(description="Delete selected tenants (resources removed after the grace period)")
    def request_deletion(self, request: HttpRequest, queryset: Any) -> None:
        from tenants.provisioning import tenant_delete_request

        for tenant in queryset:
            tenant_delete_request(tenant=tenant, actor=f"user:{request.user.get_username()}")


class ApiKeyForm(forms.ModelForm):
    scopes_text = forms.CharField(
        label="Scopes",
        initial="*",
        help_text="Comma-separated operation names or permissions; * for all.",
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    list_display = [
        "prefix",
        "name",
        "tenant",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["tenant"]
    actions = ["revoke"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["tenant", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["tenant", "name", "scopes_text"]
        return ["tenant", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        scopes = [s.strip() for s in form.cleaned_data["scopes_text"].split(",") if s.strip()]
        issued = api_key_create(tenant=obj.tenant, name=obj.name, scopes=scopes)
        obj.pk = issued.api_key.pk
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="api_key.create",
            tenant=obj.tenant,
            target=issued.api_key.prefix,
        )
        # The only time the secret exists outside the caller's hands.
        messages.warning(request, f"New API key (shown once, copy it now): {issued.secret}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
            audit_record(
                actor=f"user:{request.user.get_username()}",
                action="api_key.revoke",
                tenant=api_key.tenant,
                target=api_key.prefix,
            )


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdmin):
    list_display = ["created_at", "tenant", "actor", "action", "target"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor", "target"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
