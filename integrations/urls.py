from django.urls import path

from integrations import webhooks

urlpatterns = [
    # One route for every declared provider that receives deliveries (integrations.providers).
    path("hooks/<str:provider>/<slug:tenant>/", webhooks.provider_webhook, name="hook"),
]
