from urllib.parse import unquote, urlparse

from .env import env_int, env_url
from .profile import local_default

DATABASE_URL = env_url(
    "DATABASE_URL",
    local_default("postgres://smarteros:smarteros@127.0.0.1:5432/smarteros"),
    schemes=("postgres", "postgresql"),
)
_db = urlparse(DATABASE_URL)

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": (_db.path or "/").lstrip("/") or "smarteros",
        "USER": unquote(_db.username or ""),
        "PASSWORD": unquote(_db.password or ""),
        "HOST": _db.hostname or "",
        "PORT": str(_db.port or 5432),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        "OPTIONS": {"connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=1)},
        "TEST": {"NAME": "test_" + ((_db.path or "/").lstrip("/") or "smarteros")},
    }
}
