from django.contrib import admin
from django.urls import include, path

from mcp_tools.rest import api
from smarteros import views
from smarteros.login_throttle import ThrottledAuthenticationForm

admin.site.login_form = ThrottledAuthenticationForm

handler400 = "smarteros.error_pages.bad_request"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("mcp_tools.oauth.urls")),
    path("", include("integrations.urls")),
    path("", include("telemetry.urls")),
    path("", include("tenants.urls")),
]
