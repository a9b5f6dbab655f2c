from .env import env_int

# How often long-running workers write their heartbeat to Redis, and when /readyz calls one stale.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 5, minimum=1)
WORKER_HEARTBEAT_STALE_SECONDS = env_int("WORKER_HEARTBEAT_STALE_SECONDS", 30, minimum=2)
