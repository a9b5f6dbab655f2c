from __future__ import annotations

import pytest


@pytest.fixture
def demo(db):  # type: ignore[no-untyped-def]
    """The demo operator and tenants, with their API keys."""
    from tenants.demo import demo_seed

    return demo_seed()
