"""The Django admin's user pages, audited: who (the admin), whom (`user:<name>`), what changed
(fields and values, staff and superuser flags, groups; a password only as set or changed).

People are platform-wide rows: only platform admins (superusers) work on them here. Tenant
admins manage their tenant's people on the console's people page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import router, transaction
from django.http import HttpRequest, HttpResponse

from tenants.admin_audit import form_changes
from tenants.audit import audit_record

User = get_user_model()


def _who(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def _platform(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


class AuditedUserAdmin(UserAdmin):  # type: ignore[type-arg]
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _platform(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _platform(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform(request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and not form.changed_data:
            return
        audit_record(
            actor=_who(request),
            action="user.change" if change else "user.create",
            tenant=None,
            target=f"user:{obj.get_username()}",
            details={**form_changes(form, adding=not change), "via": "django admin"},
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(
            actor=_who(request),
            action="user.delete",
            tenant=None,
            target=f"user:{obj.get_username()}",
            details={"via": "django admin"},
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for user in queryset:
            audit_record(
                actor=_who(request),
                action="user.delete",
                tenant=None,
                target=f"user:{user.get_username()}",
                details={"via": "django admin"},
            )
        super().delete_queryset(request, queryset)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        with transaction.atomic(using=router.db_for_write(User)):
            response = super().user_change_password(request, id, form_url)
            # A redirect is the form's success; a page shown again changed nothing.
            if request.method == "POST" and response.status_code == 302:
                user = self.get_object(request, id)
                audit_record(
                    actor=_who(request),
                    action="user.change",
                    tenant=None,
                    target=f"user:{user.get_username() if user else id}",
                    details={"password_changed": True, "via": "django admin"},
                )
        return response


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
