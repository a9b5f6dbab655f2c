from django.contrib.auth import views as auth_views
from django.urls import path

from smarteros.login_throttle import ThrottledLoginView
from tenants.console import (
    audit,
    effects,
    health,
    integrations,
    keys,
    lifecycle,
    oauth_consent,
    overview,
    people,
    provision,
    tenant_list,
)

urlpatterns = [
    path("", tenant_list.tenant_list, name="dashboard"),
    path("tenants/", tenant_list.tenant_list, name="console-tenants"),
    path("tenants/new/", provision.tenant_create_view, name="console-tenant-create"),
    path("tenants/audit/", audit.audit_trail, name="console-audit"),
    path("platform/health/", health.platform_health, name="console-health"),
    path("tenants/<slug:slug>/", overview.overview, name="console-overview"),
    path("tenants/<slug:slug>/provisioning/", provision.provision_page, name="console-provision"),
    path(
        "tenants/<slug:slug>/provisioning/retry/",
        provision.provision_retry,
        name="console-provision-retry",
    ),
    path(
        "tenants/<slug:slug>/provisioning/first-key/", provision.first_key, name="console-first-key"
    ),
    path("tenants/<slug:slug>/lifecycle/", lifecycle.lifecycle, name="console-lifecycle"),
    path("tenants/<slug:slug>/plan/", lifecycle.plan, name="console-plan"),
    path("tenants/<slug:slug>/keys/", keys.keys, name="console-keys"),
    path("tenants/<slug:slug>/people/", people.people, name="console-people"),
    path("tenants/<slug:slug>/effects/", effects.effects, name="console-effects"),
    path(
        "tenants/<slug:slug>/effects/<int:effect_id>/retry/",
        effects.effect_retry_view,
        name="console-effect-retry",
    ),
    path("invite/<str:uid>/<str:token>/", people.invite_accept, name="console-invite"),
    path(
        "tenants/<slug:slug>/keys/<int:key_id>/revoke/", keys.key_revoke, name="console-key-revoke"
    ),
    path(
        "tenants/<slug:slug>/integrations/", integrations.integrations, name="console-integrations"
    ),
    path(
        "tenants/<slug:slug>/integrations/<slug:provider>/test/",
        integrations.integration_test,
        name="console-integration-test",
    ),
    path(
        "tenants/<slug:slug>/integrations/<slug:provider>/disconnect/",
        integrations.integration_disconnect_view,
        name="console-integration-disconnect",
    ),
    path("oauth/authorize/", oauth_consent.authorize, name="oauth-authorize"),
    path("login/", ThrottledLoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
