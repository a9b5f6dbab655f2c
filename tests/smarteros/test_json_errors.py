"""Machine-facing paths answer JSON errors, never a debug page; no error page shows a credential."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path


def boom(request: HttpRequest) -> HttpResponse:
    database_url = "postgres://app:hunter2-db@db.internal:5432/app"  # noqa: F841 (a frame local)
    raise RuntimeError("kaboom with postgres://app:hunter2-db@db.internal:5432/app")


def too_big(request: HttpRequest) -> HttpResponse:
    return HttpResponse(len(request.body))


urlpatterns = [
    path("api/boom/", boom),
    path("hooks/boom/", boom),
    path("hooks/big/", too_big),
    path("console/boom/", boom),
    path("", include("smarteros.urls")),
]

SECRET_URL = "postgres://app:hunter2-db@db.internal:5432/app"


@pytest.fixture
def client(settings: Any) -> Client:
    settings.DEBUG = True  # the local stack's setting: the debug page is what is at stake
    settings.DATABASE_URL = SECRET_URL
    settings.CELERY_BROKER_URL = "redis://:hunter2-redis@cache.internal:6379/0"
    return Client(raise_request_exception=False)


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("where", ["/api/boom/", "/hooks/boom/"])
def test_an_unhandled_error_is_a_bare_json_500(client: Client, where: str, caplog: Any) -> None:
    response = client.post(where, data=b"{}", content_type="application/json")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "internal_error" and body["message"] == "Internal Server Error"
    assert (
        "kaboom" not in response.content.decode() and "Traceback" not in response.content.decode()
    )
    assert "kaboom" in caplog.text  # the details are in the log only


@pytest.mark.urls(__name__)
def test_other_error_pages_under_api_and_hooks_are_json(client: Client) -> None:
    missing = client.get("/hooks/no-such-provider/acme/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    nowhere = client.get("/hooks/no/such/path/")  # no route at all
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "not_found"
    big = client.post("/hooks/big/", data=b"x" * 3_000_000, content_type="application/json")
    assert big.status_code == 413 and big.json()["code"] == "too_large"


@pytest.mark.urls(__name__)
def test_the_debug_page_elsewhere_shows_no_credential(client: Client) -> None:
    page = client.get("/console/boom/")
    assert page.status_code == 500 and "text/html" in page["Content-Type"]
    html = page.content.decode()
    assert "DATABASE_URL" in html and "CELERY_BROKER_URL" in html  # listed, but hidden
    assert "hunter2" not in html


def test_mask_url_passwords() -> None:
    from smarteros.exception_filter import mask_url_passwords

    assert (
        mask_url_passwords("see postgres://app:pw@h:5/db and redis://:x@r/0 and http://h/p")
        == "see postgres://app:********@h:5/db and redis://:********@r/0 and http://h/p"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "where", "allow"),
    [
        ("get", "/api/v1/tenant/get_tenant", "POST"),
        ("put", "/hooks/shopify/acme/", "POST"),
        ("delete", "/hooks/whatsapp/acme/", "GET, POST"),
        ("put", "/hooks/n8n/acme/", "POST"),
    ],
)
def test_a_405_says_which_methods_are_allowed(method: str, where: str, allow: str) -> None:
    """Found by schemathesis: the JSON 405 had lost Django's Allow header (RFC 9110)."""
    response = getattr(Client(), method)(where)
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == allow
