from urllib.parse import ParseResult, quote, unquote, urlparse

from .env import env_bool, env_int, env_url, report_problem
from .profile import local_default

DATABASE_URL = env_url(
    "DATABASE_URL",
    local_default("postgres://smarteros:smarteros@127.0.0.1:5432/smarteros"),
    schemes=("postgres", "postgresql"),
)
_db = urlparse(DATABASE_URL)
_name = (_db.path or "/").lstrip("/") or "smarteros"

# Platform-wide work (dangerously_unscoped) logs in as a second role with BYPASSRLS; the
# application's own role is not a member of it, so no session of the app can switch RLS off.
# Locally it defaults to the same server and database as DATABASE_URL.
DATABASE_PLATFORM_URL = env_url(
    "DATABASE_PLATFORM_URL",
    local_default(
        f"postgres://smarteros_platform:smarteros_platform@{_db.hostname or '127.0.0.1'}"
        f":{_db.port or 5432}/{quote(_name)}"
    ),
    schemes=("postgres", "postgresql"),
)
_platform = urlparse(DATABASE_PLATFORM_URL)


# A connection pool per process and alias (psycopg_pool), for the web tier: under ASGI, Django
# opens a connection per request and alias otherwise (persistent connections do not survive
# its per-request threads). Pooled connections are checked before each use (CONN_HEALTH_CHECKS),
# so one the server dropped is replaced instead of failing a request; the check costs a round
# trip only when the connection's socket shows a problem (smarteros.infra.pg_backend).
DATABASE_POOL = env_bool("DATABASE_POOL", False)
DATABASE_POOL_MIN_SIZE = env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0)
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 20, minimum=1)
# Seconds a request waits for a free pooled connection before failing (503).
DATABASE_POOL_TIMEOUT = env_int("DATABASE_POOL_TIMEOUT", 10, minimum=1)
_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0)
if DATABASE_POOL and _CONN_MAX_AGE:
    report_problem("DATABASE_POOL and DATABASE_CONN_MAX_AGE exclude each other: set one")
if DATABASE_POOL and DATABASE_POOL_MIN_SIZE > DATABASE_POOL_MAX_SIZE:
    report_problem("DATABASE_POOL_MIN_SIZE must not exceed DATABASE_POOL_MAX_SIZE")


def _options() -> dict[str, object]:
    options: dict[str, object] = {
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=1)
    }
    if DATABASE_POOL:
        options["pool"] = {
            "min_size": DATABASE_POOL_MIN_SIZE,
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": DATABASE_POOL_TIMEOUT,
        }
    return options


def _alias(parsed: ParseResult, name: str) -> dict[str, object]:
    return {
        "ENGINE": "smarteros.infra.pg_backend",
        "NAME": name,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or 5432),
        "CONN_MAX_AGE": _CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": DATABASE_POOL,
        "OPTIONS": _options(),
    }


DATABASES = {
    "default": {**_alias(_db, _name), "TEST": {"NAME": "test_" + _name}},
    # A test mirror takes only the test database's name: its own login stays, so tests exercise
    # the platform role against the test database, and data is flushed once, through default.
    "platform": {
        **_alias(_platform, (_platform.path or "/").lstrip("/") or _name),
        "TEST": {"MIRROR": "default"},
    },
}
DATABASE_ROUTERS = ["tenants.scope.ScopeRouter"]
