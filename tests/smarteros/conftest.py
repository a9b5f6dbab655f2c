"""Fixtures for the event backbone's tests: a Kafka-API broker of the test's own."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from smarteros.events import outbox
from smarteros.events.catalog import platform_topics
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import forget_producers
from tests.processes import kafka_broker


@pytest.fixture
def broker(settings: Any) -> Iterator[Any]:
    """A fresh broker for this test, with the catalog's platform topics."""
    with kafka_broker() as server:
        settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{server.port}"
        settings.KAFKA_CONSUMER_GROUP_PREFIX = f"test{secrets.token_hex(3)}"
        forget_producers()
        outbox._known_topics.clear()
        topics_sync(platform_topics())
        yield server
        forget_producers()
        outbox._known_topics.clear()
