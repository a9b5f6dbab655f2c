from .env import env_int

# How often long-running workers write their heartbeat to Redis, and when /readyz calls one stale.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 5, minimum=1)
WORKER_HEARTBEAT_STALE_SECONDS = env_int("WORKER_HEARTBEAT_STALE_SECONDS", 30, minimum=2)
# A consumer group with lag that handled nothing for this long, or with a member silent this
# long, is stalled: /readyz turns degraded naming it (above CONSUMER_MAX_BACKOFF_SECONDS, so a
# group waiting for a dependency to come back is named by that dependency first).
CONSUMER_GROUP_STALL_SECONDS = env_int("CONSUMER_GROUP_STALL_SECONDS", 120, minimum=2)
