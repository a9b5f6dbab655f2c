"""Redis: cache, rate limits, Channels layer and Celery broker."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def get_redis() -> redis.Redis:
    """The process-wide Redis client (connection pool inside)."""
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, decode_responses=True
    )


def check(timeout: float) -> str:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        info = client.info("server")
    finally:
        client.close()
    return f"Redis {info.get('redis_version', '?')}"
