from .env import env_choice
from .profile import IS_PRODUCTION

LOG_FORMAT = env_choice("LOG_FORMAT", "json" if IS_PRODUCTION else "text", choices=("json", "text"))
LOG_LEVEL = env_choice(
    "LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "smarteros.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "smarteros.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)-7s %(name)s [tenant=%(tenant)s trace=%(trace_id)s] "
            "%(message)s"
        },
    },
    "handlers": {
        # stderr keeps stdout free for the MCP stdio protocol.
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["context"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "kafka": {"level": "WARNING"},
        # Stateless /mcp ends a "session" per request and says so at INFO: a line per call.
        "mcp.server.streamable_http": {"level": "WARNING"},
    },
}
