from django.urls import path

from telemetry import views

urlpatterns = [
    path("telemetry/", views.telemetry_page, name="telemetry"),
    path("telemetry/data.json", views.telemetry_data, name="telemetry-data"),
]
