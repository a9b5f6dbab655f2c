"""The daily beat task deletes expired OAuth tokens and keeps live ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from mcp_tools.tasks import oauth_clear_expired
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)


def test_expired_tokens_are_deleted_and_live_ones_kept() -> None:
    from oauth2_provider.models import AccessToken, Application

    assert settings.CELERY_BEAT_SCHEDULE["oauth-clear-expired"]["task"] == oauth_clear_expired.name
    with dangerously_unscoped():
        user = get_user_model().objects.create_user("oauth-cleanup", password="x-password-1")
        app = Application.objects.create(
            name="client",
            client_type=Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="http://127.0.0.1:33418/callback",
        )
        now = timezone.now()
        for token, expires in (
            ("expired", now - timedelta(days=2)),
            ("live", now + timedelta(hours=1)),
        ):
            AccessToken.objects.create(
                user=user, application=app, token=token, expires=expires, scope="tenant.read"
            )

    oauth_clear_expired()

    with dangerously_unscoped():
        assert sorted(AccessToken.objects.values_list("token", flat=True)) == ["live"]
