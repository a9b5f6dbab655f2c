from .env import env_float, env_str
from .profile import ENVIRONMENT

SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")

if SENTRY_DSN:
    from smarteros.observability import init_sentry

    init_sentry(
        dsn=SENTRY_DSN, environment=ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE
    )
