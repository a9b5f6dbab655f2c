from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenants.scope import dangerously_unscoped


class PlatformAdminScopeMiddleware:
    """Platform admins (superusers) work across tenants in the Django admin; everyone else gets
    row-level security as usual, which without a tenant means no tenant-owned rows."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if request.path.startswith("/admin/") and user is not None and user.is_superuser:
            with dangerously_unscoped():
                return self.get_response(request)
        return self.get_response(request)
