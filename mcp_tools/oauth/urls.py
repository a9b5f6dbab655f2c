from django.urls import path
from oauth2_provider import views as oauth_views

from mcp_tools.oauth import views

urlpatterns = [
    path(".well-known/oauth-protected-resource", views.protected_resource_metadata),
    path(
        ".well-known/oauth-protected-resource/<path:resource_path>",
        views.protected_resource_metadata,
    ),
    path(".well-known/oauth-authorization-server", views.authorization_server_metadata),
    path("oauth/register/", views.register, name="oauth-register"),
    path("oauth/token/", views.refuse_nul(oauth_views.TokenView.as_view()), name="oauth-token"),
    path(
        "oauth/revoke/",
        views.refuse_nul(oauth_views.RevokeTokenView.as_view()),
        name="oauth-revoke",
    ),
]
