"""The API docs page works offline: every asset comes from our own static files."""

from __future__ import annotations

import re

from django.test import Client


def test_docs_page_loads_swagger_from_own_static_files() -> None:
    client = Client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert not [a for a in assets if "//" in a], "the docs page must not load from a CDN"
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
