from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenants.roles import Capability, roles_with
from tenants.scope import dangerously_unscoped, tenant_scope
from tenants.selectors import tenant_ids_of


class PlatformAdminScopeMiddleware:
    """Scopes the Django admin: platform admins (superusers) work across tenants; a tenant admin
    of one tenant works under that tenant's row-level security; anyone else gets row-level
    security with no tenant, which means no tenant-owned rows at all.

    An admin of several tenants cannot be served by one tenant's RLS: their requests run
    unscoped, and TenantScopedAdmin (the base of every admin for tenant rows) filters each
    queryset to the administered tenants and checks each object."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not request.path.startswith("/admin/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        if user.is_superuser:
            with dangerously_unscoped():
                return self.get_response(request)
        administered = tenant_ids_of(user_id=user.pk, roles=roles_with(Capability.DJANGO_ADMIN))
        if len(administered) == 1:
            with tenant_scope(administered[0]):
                return self.get_response(request)
        if administered:
            with dangerously_unscoped():
                return self.get_response(request)
        return self.get_response(request)
