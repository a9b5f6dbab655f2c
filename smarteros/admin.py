from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from smarteros.events.outbox import outbox_retry
from smarteros.models import OutboxEvent
from tenants.admin import TenantScopedAdmin


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "waiting"), ("set_aside", "set aside"), ("sent", "sent")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "pending":
            return queryset.filter(sent_at__isnull=True, failed_at__isnull=True)
        if self.value() == "set_aside":
            return queryset.filter(sent_at__isnull=True, failed_at__isnull=False)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(TenantScopedAdmin):
    """The outbox as it is: what waits, what went out, and what the broker refused (set aside
    with the reason) and can be retried once its cause is fixed. Rows are never edited here.
    Payloads are tenant data (message texts, orders): a tenant admin sees their tenants' rows
    only, and rows of no tenant are the platform's."""

    list_display = ("id", "topic", "event_type", "tenant", "created_at", "sent_at", "failed_at")
    list_filter = (OutboxStateFilter,)
    search_fields = ("=event_id", "topic", "tenant", "key")
    ordering = ("-id",)
    actions = ["retry"]
    show_full_result_count = False  # the table is large; counting it all is not worth a page

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in OutboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Retry the selected set-aside events")
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        retried = outbox_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"{retried} set-aside event(s) back in line; one refused again is set aside again "
            "with the reason.",
            messages.SUCCESS if retried else messages.WARNING,
        )
