from django.contrib import admin
from django.urls import include, path

from smarteros import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("tenants.urls")),
]
