from django.urls import path

from integrations import webhooks

urlpatterns = [
    path("hooks/shopify/<slug:tenant>/", webhooks.shopify_webhook, name="hook-shopify"),
    path("hooks/whatsapp/<slug:tenant>/", webhooks.whatsapp_webhook, name="hook-whatsapp"),
    path("hooks/n8n/<slug:tenant>/", webhooks.n8n_webhook, name="hook-n8n"),
    path("hooks/clerk/<slug:tenant>/", webhooks.clerk_webhook, name="hook-clerk"),
]
