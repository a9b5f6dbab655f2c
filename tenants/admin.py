from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from tenants import admin_users  # noqa: F401  (registers the audited user admin)
from tenants.admin_audit import form_changes, inline_changes
from tenants.audit import audit_record, audit_refusal
from tenants.models import ApiKey, AuditEvent, Membership, Tenant
from tenants.roles import Capability, roles_with
from tenants.scope import dangerously_unscoped
from tenants.scopes import scope_choices, scopes_validate
from tenants.selectors import tenant_ids_of
from tenants.services import api_key_create, api_key_revoke


def administered_tenant_ids(request: HttpRequest) -> list[int] | None:
    """The tenants this person administers in the admin; None for a platform admin (all).
    Remembered on the request: every permission check asks."""
    user = request.user
    if getattr(user, "is_superuser", False):
        return None
    cached = getattr(request, "_administered_tenant_ids", None)
    if cached is None:
        cached = (
            tenant_ids_of(user_id=int(user.pk), roles=roles_with(Capability.DJANGO_ADMIN))
            if user.is_authenticated and user.pk is not None
            else []
        )
        request._administered_tenant_ids = cached  # type: ignore[attr-defined]
    return list(cached)


def shown_once(
    request: HttpRequest, *, title: str, secrets: list[tuple[str, str]], back: str
) -> HttpResponse:
    """A page that shows new secrets this one time. Never through `messages` (its storage is a
    cookie, then the session) and never cached (`Cache-Control: no-store`)."""
    context = {
        **admin.site.each_context(request),
        "title": title,
        "secrets": secrets,
        "back": back,
    }
    response = render(request, "admin/shown_once.html", context)
    add_never_cache_headers(response)
    return response


class ShowsSecretOnce(admin.ModelAdmin):
    """For admins whose save issues a secret: `save_model` calls `secret_issued`, and the answer
    to the add or change is the shown-once page instead of a redirect with a message."""

    def secret_issued(self, request: HttpRequest, label: str, secret: str) -> None:
        issued = getattr(request, "_secrets_issued", [])
        issued.append((label, secret))
        request._secrets_issued = issued  # type: ignore[attr-defined]

    def _shown(self, request: HttpRequest, obj: Any) -> HttpResponse | None:
        issued = getattr(request, "_secrets_issued", None)
        if not issued:
            return None
        opts = self.model._meta
        return shown_once(
            request,
            title=f"{opts.verbose_name} {obj}".capitalize(),
            secrets=issued,
            back=reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        )

    def response_add(self, request: HttpRequest, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return self._shown(request, obj) or super().response_add(request, obj, *args, **kwargs)

    def response_change(self, request: HttpRequest, obj: Any) -> Any:
        return self._shown(request, obj) or super().response_change(request, obj)


class TenantScopedAdmin(admin.ModelAdmin):
    """Admin for tenant-owned rows: a platform admin sees every row; anyone else only the rows
    of tenants they administer (row-level security applies underneath as well). Another
    tenant's object is refused with 403 and audited, and so is an action on it."""

    # The lookup from this model to its tenant's id.
    tenant_lookup = "tenant_id"

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        ids = administered_tenant_ids(request)
        return queryset if ids is None else queryset.filter(**{f"{self.tenant_lookup}__in": ids})

    def _owns(self, request: HttpRequest, obj: Any) -> bool:
        ids = administered_tenant_ids(request)
        if ids is None or obj is None:
            return True
        return self._tenant_id_of(obj) in ids

    def _tenant_id_of(self, obj: Any) -> int | None:
        return getattr(obj, "tenant_id", None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self._owns(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._owns(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._owns(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        ids = administered_tenant_ids(request)
        return super().has_add_permission(request, *args) and (ids is None or bool(ids))

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None and administered_tenant_ids(request) is not None:
            with dangerously_unscoped():
                try:
                    foreign = self.model._default_manager.filter(pk=object_id).first()
                except (ValueError, ValidationError):
                    foreign = None
            if foreign is not None:
                self._refuse(request, "admin.view", [foreign])
        return obj

    def response_action(
        self, request: HttpRequest, queryset: Any, *args: Any, **kwargs: Any
    ) -> Any:
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if selected and administered_tenant_ids(request) is not None:
            allowed = {
                str(pk) for pk in queryset.filter(pk__in=selected).values_list("pk", flat=True)
            }
            foreign = [pk for pk in selected if pk not in allowed]
            if foreign:
                with dangerously_unscoped():
                    try:
                        objects = list(self.model._default_manager.filter(pk__in=foreign))
                    except (ValueError, ValidationError):
                        objects = []
                self._refuse(request, f"admin.action.{request.POST.get('action', '')}", objects)
        return super().response_action(request, queryset, *args, **kwargs)

    def _refuse(self, request: HttpRequest, action: str, objects: list[Any]) -> None:
        label = self.model._meta.label
        targets = ", ".join(f"{label}:{obj.pk}" for obj in objects) or label
        reason = f"{request.user.get_username()} does not administer the tenant of {targets}"
        tenants = {self._tenant_id_of(obj) for obj in objects}
        audit_refusal(
            actor=f"user:{request.user.get_username()}",
            action=action,
            tenant=Tenant(pk=tenants.pop()) if len(tenants) == 1 and None not in tenants else None,
            target=targets,
            reason=reason,
        )
        raise PermissionDenied(reason)

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if getattr(request.user, "is_superuser", False):
            return filters
        return [f for f in filters if f != "tenant"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = administered_tenant_ids(request)
        if db_field.name == "tenant" and ids is not None:
            kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AuditedAdmin(TenantScopedAdmin):
    """Records every change a person makes here in the audit log: the fields changed and their
    values (secrets only as set or changed), and each row its inlines add, change or delete
    (memberships as the console's member.* entries)."""

    def _tenant_of(self, obj: Any) -> Tenant | None:
        return obj if isinstance(obj, Tenant) else getattr(obj, "tenant", None)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and not form.changed_data:
            return  # saved as it was (its inlines, if any, are audited on their own)
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="admin.change" if change else "admin.add",
            tenant=self._tenant_of(obj),
            target=f"{obj._meta.label}:{obj.pk}",
            details=form_changes(form, adding=not change),
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        changes = inline_changes(formset)
        # A deleted row's names are read before it goes.
        targets = {id(f): self._inline_target(f.instance) for kind, f, _ in changes}
        super().save_formset(request, form, formset, change)
        actor = f"user:{request.user.get_username()}"
        for kind, inline_form, details in changes:
            row = inline_form.instance
            tenant = self._tenant_of(row) or self._tenant_of(form.instance)
            target = targets[id(inline_form)] or self._inline_target(row)
            if isinstance(row, Membership):
                action, details = _membership_entry(kind, row, details)
            else:
                action = f"admin.{kind}"
            audit_record(actor=actor, action=action, tenant=tenant, target=target, details=details)

    def _inline_target(self, row: Any) -> str:
        if isinstance(row, Membership):
            user = getattr(row, "user", None) if row.user_id else None
            return f"user:{user.get_username()}" if user is not None else ""
        return f"{row._meta.label}:{row.pk}" if row.pk is not None else ""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="admin.delete",
            tenant=self._tenant_of(obj),
            target=f"{obj._meta.label}:{obj.pk}",
        )
        super().delete_model(request, obj)


def _membership_entry(
    kind: str, membership: Membership, details: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A membership changed in the admin, audited as the console's people page audits it."""
    via = {"via": "django admin"}
    if kind == "add":
        return "member.add", {"role": membership.role, **via}
    if kind == "delete":
        return "member.remove", {"role": membership.role, **via}
    role = details.pop("role", None)
    entry = {"from": role["from"], "to": role["to"]} if isinstance(role, dict) else {}
    # Anything else changed on the row (another person chosen) is named as well.
    return "member.role" if entry else "admin.change", {**entry, **details, **via}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Tenant)
class TenantAdmin(AuditedAdmin):
    list_display = ["slug", "name", "status", "plan", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["slug", "name"]
    # The status moves only through the lifecycle table (tenants.lifecycle), by the actions.
    readonly_fields = [
        "status",
        "provisioning_error",
        "deleted_at",
        "deprovisioned_at",
        "vault_namespace",
    ]
    # What the platform sells and relies on: only platform admins change these.
    platform_fields = ["slug", "plan", "rate_limit_per_minute", "llm_tokens_per_day"]
    inlines = [MembershipInline]
    actions = ["provision", "request_deletion", "cancel_deletion", "suspend", "resume"]
    tenant_lookup = "pk"

    def _tenant_id_of(self, obj: Any) -> int | None:
        return int(obj.pk) if obj is not None and obj.pk is not None else None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != Tenant.Status.PENDING and "slug" not in fields:
            # Its topics, Vault key and webhook URLs are named by it (the database refuses too).
            fields.append("slug")
        if getattr(request.user, "is_superuser", False):
            return fields
        return fields + [f for f in self.platform_fields if f not in fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # Creating a tenant is platform work.
        return bool(getattr(request.user, "is_superuser", False))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Removing the row outright skips the grace period and deprovisioning: platform only.
        return bool(getattr(request.user, "is_superuser", False))

    @admin.action(
        description="Provision (or finish provisioning) selected tenants",
        permissions=["change"],
    )
    def provision(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        from tenants.provisioning import ProvisioningFailed, tenant_provision

        first_keys = []
        for tenant in queryset:
            audit_record(
                actor=f"user:{request.user.get_username()}",
                action="admin.provision",
                tenant=tenant,
                target=tenant.slug,
            )
            try:
                report = tenant_provision(tenant=tenant)
            except ProvisioningFailed as exc:
                messages.error(request, str(exc))
                continue
            messages.success(request, f"{tenant.slug} provisioned.")
            if report.first_api_key:
                first_keys.append((f"{tenant.slug}: first API key", report.first_api_key))
        if not first_keys:
            return None
        return shown_once(
            request,
            title="First API key (shown once)",
            secrets=first_keys,
            back=reverse("admin:tenants_tenant_changelist"),
        )

    @admin.action(
        description="Delete selected tenants (resources removed after the grace period)",
        permissions=["change"],
    )
    def request_deletion(self, request: HttpRequest, queryset: Any) -> None:
        self._lifecycle(request, queryset, "delete")

    @admin.action(description="Cancel the deletion of selected tenants", permissions=["change"])
    def cancel_deletion(self, request: HttpRequest, queryset: Any) -> None:
        self._lifecycle(request, queryset, "cancel_delete")

    @admin.action(description="Suspend selected tenants (platform admins)", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: Any) -> None:
        self._lifecycle(request, queryset, "suspend")

    @admin.action(description="Resume selected tenants (platform admins)", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: Any) -> None:
        self._lifecycle(request, queryset, "resume")

    def _lifecycle(self, request: HttpRequest, queryset: Any, action: str) -> None:
        """Each tenant through the lifecycle table; a refused one is reported and audited."""
        from tenants.lifecycle import Actor, LifecycleRefused, tenant_lifecycle_apply

        actor_name = f"user:{request.user.get_username()}"
        actor = Actor.PLATFORM if request.user.is_superuser else Actor.TENANT_ADMIN
        for tenant in queryset:
            try:
                tenant_lifecycle_apply(
                    tenant=tenant,
                    action=action,
                    actor=actor,
                    actor_name=actor_name,
                    reason="admin action",
                )
            except LifecycleRefused as exc:
                audit_refusal(
                    actor=actor_name,
                    action=f"tenant.{action}",
                    tenant=tenant,
                    target=tenant.slug,
                    reason=str(exc),
                )
                messages.error(request, str(exc))


class ApiKeyForm(forms.ModelForm):
    scopes_choice = forms.MultipleChoiceField(
        label="Scopes",
        initial=["*"],
        widget=forms.SelectMultiple(attrs={"size": 20}),
        help_text="* is every ordinary permission; agent.admin, tenant.admin and platform "
        "scopes are granted by name (platform scopes by platform admins only).",
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name"]

    # Set by ApiKeyAdmin.get_form: whether the person may grant platform scopes.
    platform_allowed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = scope_choices()
        if not self.platform_allowed:
            choices = [
                (group, [(value, label) for value, label in options if not _is_platform(value)])
                for group, options in choices
            ]
        field = self.fields["scopes_choice"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(g, o) for g, o in choices if o]

    def clean_scopes_choice(self) -> list[str]:
        try:
            return scopes_validate(
                self.cleaned_data.get("scopes_choice") or [],
                platform_allowed=self.platform_allowed,
            )
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["scopes"]) from None


def _is_platform(scope: str) -> bool:
    from tenants.scopes import scope_is_platform

    return scope_is_platform(scope)


@admin.register(ApiKey)
class ApiKeyAdmin(ShowsSecretOnce, AuditedAdmin):
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
            kwargs["form"] = type(
                "ApiKeyForm",
                (ApiKeyForm,),
                {"platform_allowed": bool(getattr(request.user, "is_superuser", False))},
            )
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["tenant", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["tenant", "name", "scopes_choice"]
        return ["tenant", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_key_create(
            tenant=obj.tenant,
            name=obj.name,
            scopes=form.cleaned_data["scopes_choice"],
            platform_allowed=bool(getattr(request.user, "is_superuser", False)),
        )
        obj.pk = issued.api_key.pk
        audit_record(
            actor=f"user:{request.user.get_username()}",
            action="api_key.create",
            tenant=obj.tenant,
            target=issued.api_key.prefix,
        )
        # The only time the secret exists outside the caller's hands.
        self.secret_issued(request, "New API key (shown once)", issued.secret)

    @admin.action(description="Revoke selected keys", permissions=["change"])
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
