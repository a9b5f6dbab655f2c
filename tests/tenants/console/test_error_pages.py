"""The console's own 404 and 500 pages, in every profile: no URL patterns, settings or traceback."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from tests.smarteros.test_settings import start_django
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("kaboom-secret")


urlpatterns = [path("console/boom/", boom), path("", include("smarteros.urls"))]


def test_an_unknown_page_is_the_consoles_404(world: World) -> None:
    response = world.client("viewer").get("/tenants/no/such/page/here/")
    body = response.content.decode()
    assert response.status_code == 404 and 'id="not-found"' in body
    assert "URLconf" not in body and "console-keys" not in body


@pytest.mark.urls(__name__)
def test_a_crash_is_the_consoles_500() -> None:
    response = Client(raise_request_exception=False).get("/console/boom/")
    body = response.content.decode()
    assert response.status_code == 500 and 'id="server-error"' in body
    assert "kaboom-secret" not in body and "Traceback" not in body


def test_debug_is_off_unless_asked_for() -> None:
    probe = "from django.conf import settings; print(settings.DEBUG)"
    for env, expected in (({}, "False"), ({"DJANGO_DEBUG": "true"}, "True")):
        result = start_django(then=probe, **env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(expected), (env, result.stdout)
