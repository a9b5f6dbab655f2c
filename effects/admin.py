from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from effects.models import Effect
from effects.services import effect_retry
from tenants.admin import TenantScopedAdmin
from tenants.audit import audit_record


@admin.register(Effect)
class EffectAdmin(TenantScopedAdmin):
    """Outside effects per tenant: what is pending, done or failed (with why); a failed one can
    be retried. Read-only otherwise: effects are recorded by the code that wants them."""

    list_display = ["tenant", "kind", "key", "state", "attempts", "created_at", "done_at"]
    list_filter = ["tenant", "state", "kind"]
    search_fields = ["key", "last_error"]
    readonly_fields = [
        "tenant",
        "kind",
        "key",
        "payload",
        "state",
        "attempts",
        "last_error",
        "result",
        "not_before",
        "trace_id",
        "created_at",
        "updated_at",
        "done_at",
    ]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Retry selected failed effects")
    def retry(self, request: HttpRequest, queryset: Any) -> None:
        retried = 0
        for effect in queryset.filter(state=Effect.State.FAILED):
            if effect_retry(effect=effect):
                retried += 1
                audit_record(
                    actor=f"user:{request.user.get_username()}",
                    action="effect.retry",
                    tenant=effect.tenant,
                    target=f"{effect.kind}:{effect.key}",
                )
        skipped = queryset.count() - retried
        messages.info(
            request, f"{retried} effect(s) queued again; {skipped} not failed, left alone."
        )
