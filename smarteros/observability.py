"""Sentry set-up; switched on only when SENTRY_DSN is configured."""

from __future__ import annotations

from typing import Any

from smarteros.scrub import scrub_mapping


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return scrub_mapping(event)


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=_before_send,  # type: ignore[arg-type]
        before_send_transaction=_before_send,  # type: ignore[arg-type]
    )
