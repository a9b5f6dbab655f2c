from .env import env_int, env_list

# Seconds between an effect's failed attempts; one more attempt than delays, then it fails.
EFFECT_RETRY_DELAYS = [float(d) for d in env_list("EFFECT_RETRY_DELAYS", "2,10,60,300")]
# How long a worker holds an effect it is performing before another may take it over (longer
# than the slowest provider call: the LLM's 60 s timeout plus a send).
EFFECT_LEASE_SECONDS = env_int("EFFECT_LEASE_SECONDS", 120, minimum=1)
# A pending effect nobody took this long after it was due is enqueued again (its enqueue was
# lost: the process died between commit and enqueue, or the broker dropped it).
EFFECT_REQUEUE_AFTER_SECONDS = env_int("EFFECT_REQUEUE_AFTER_SECONDS", 60, minimum=1)
# Effects of one tenant recorded together are performed by tasks of up to this many (their
# provider client is built once per task); more tasks spread a large batch over the workers.
EFFECT_BATCH_SIZE = env_int("EFFECT_BATCH_SIZE", 20, minimum=1)
