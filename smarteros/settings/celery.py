from .env import env_bool, env_url
from .redis import REDIS_URL

CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "amqp"))
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "tenants-deprovision-due": {"task": "tenants.deprovision_due", "schedule": 3600.0},
    "events-prune": {"task": "smarteros.events_prune", "schedule": 3600.0},
    "webhook-deliveries-prune": {
        "task": "integrations.webhook_deliveries_prune",
        "schedule": 3600.0,
    },
    "effects-requeue": {"task": "effects.requeue_lost", "schedule": 30.0},
    "telemetry-retention": {"task": "telemetry.enforce_retention", "schedule": 6 * 3600.0},
    "oauth-clear-expired": {"task": "mcp_tools.oauth_clear_expired", "schedule": 24 * 3600.0},
}
