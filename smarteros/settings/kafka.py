from smarteros.events.catalog import CATALOG

from .env import env_int, env_json, env_str, report_problem

KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# Extra librdkafka settings for managed brokers, e.g.
# "security.protocol=SASL_SSL,sasl.mechanism=PLAIN".
KAFKA_CLIENT_CONFIG = env_str("KAFKA_CLIENT_CONFIG", "")
KAFKA_DEFAULT_PARTITIONS = env_int("KAFKA_DEFAULT_PARTITIONS", 3, minimum=1)
KAFKA_REPLICATION_FACTOR = env_int("KAFKA_REPLICATION_FACTOR", 1, minimum=1)
# Tansu's group join takes about half the session timeout, so a short one keeps tests quick.
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 6000, minimum=1000)
KAFKA_CONSUMER_GROUP_PREFIX = env_str("KAFKA_CONSUMER_GROUP_PREFIX", "smarteros")
# How long telemetry records may wait to be batched (they describe calls; nothing waits on them).
KAFKA_TELEMETRY_LINGER_MS = env_int("KAFKA_TELEMETRY_LINGER_MS", 100, minimum=0)
# A telemetry record not acknowledged within this is sent again by a new producer (one that a
# broker restarted without its data no longer knows can wedge); it is never dropped.
KAFKA_TELEMETRY_RESEND_MS = env_int("KAFKA_TELEMETRY_RESEND_MS", 10000, minimum=1000)
if KAFKA_TELEMETRY_LINGER_MS >= KAFKA_TELEMETRY_RESEND_MS:
    # librdkafka refuses such a producer, and every call's record would be lost.
    report_problem(
        f"KAFKA_TELEMETRY_LINGER_MS ({KAFKA_TELEMETRY_LINGER_MS}) must be less than "
        f"KAFKA_TELEMETRY_RESEND_MS ({KAFKA_TELEMETRY_RESEND_MS})"
    )
# How long the outbox keeps rows after they were published (what went out, and when).
OUTBOX_SENT_RETENTION_HOURS = env_int("OUTBOX_SENT_RETENTION_HOURS", 24, minimum=1)
# How long consumers remember handled event ids: redeliveries older than this are not caught,
# so keep it at least as long as the longest replay you would run (topic retention by default).
PROCESSED_EVENTS_RETENTION_DAYS = env_int("PROCESSED_EVENTS_RETENTION_DAYS", 7, minimum=1)
# /readyz says "degraded" when the oldest event waiting in the outbox is older than this, or when
# more events than this are set aside (refused by the broker, waiting for an operator's retry).
OUTBOX_DEGRADED_AGE_SECONDS = env_int("OUTBOX_DEGRADED_AGE_SECONDS", 120, minimum=1)
OUTBOX_DEGRADED_SET_ASIDE = env_int("OUTBOX_DEGRADED_SET_ASIDE", 0, minimum=0)
# A consumer applies a changed list of tenant topics at most once per this many seconds: each
# re-subscription costs the broker a metadata request for every topic in the list, so a burst
# of provisionings is joined in one (a new tenant's first event waits this long at most).
SUBSCRIPTION_REFRESH_SECONDS = env_int("SUBSCRIPTION_REFRESH_SECONDS", 10, minimum=0)
# How long a consumer waits, at most, between attempts while a dependency is down (it pauses).
CONSUMER_MAX_BACKOFF_SECONDS = env_int("CONSUMER_MAX_BACKOFF_SECONDS", 30, minimum=1)
# Retention per catalog topic, overriding the catalog's defaults: JSON, catalog name -> days,
# e.g. {"shopify.webhooks": 7}. `manage.py topics sync` applies it; `topics status` shows drift.
KAFKA_TOPIC_RETENTION_DAYS = env_json("KAFKA_TOPIC_RETENTION_DAYS", "") or {}
if not isinstance(KAFKA_TOPIC_RETENTION_DAYS, dict) or not all(
    isinstance(v, int | float) and v >= 0 for v in KAFKA_TOPIC_RETENTION_DAYS.values()
):
    report_problem("KAFKA_TOPIC_RETENTION_DAYS must map catalog topic names to days (>= 0)")
    KAFKA_TOPIC_RETENTION_DAYS = {}
elif unknown := set(KAFKA_TOPIC_RETENTION_DAYS) - {spec.name for spec in CATALOG}:
    report_problem(f"KAFKA_TOPIC_RETENTION_DAYS names unknown topics: {', '.join(sorted(unknown))}")
