from .env import env_url

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss"))

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "smarteros",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# channels-redis waits for messages with a 5 s BZPOPMIN; redis-py 8 then times the read out at
# the same 5 s and the consumer dies. A longer socket timeout leaves room for the server's answer.
_CHANNEL_HOSTS = [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 2}]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": _CHANNEL_HOSTS, "prefix": "smarteros:channels"},
    },
    # The live topic viewer's fan-out: a socket that falls this many batches behind is skipped
    # (it counts them as missed) rather than queueing in Redis.
    "topics": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": _CHANNEL_HOSTS,
            "prefix": "smarteros:topics",
            "capacity": 40,
            "expiry": 30,
        },
    },
}
