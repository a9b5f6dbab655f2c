import ipaddress
from pathlib import Path

from .env import env_bool, env_int, env_list, env_str, report_problem
from .profile import ENVIRONMENT, IS_PRODUCTION, local_default

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("DJANGO_SECRET_KEY", local_default("insecure-local-development-key-change-me"))
# Off in every profile unless asked for: Django's debug pages list every URL pattern (404) and
# the settings (500) to whoever reaches the console; DJANGO_DEBUG=true while developing.
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", local_default("localhost,127.0.0.1,[::1],testserver")
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
SMARTEROS_PUBLIC_URL = env_str("SMARTEROS_PUBLIC_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # django-ninja's own static Swagger UI: the API docs page loads nothing from a CDN.
    "ninja",
    "smarteros",
    "tenants",
    "integrations",
    "effects",
    "telemetry",
    # Before mcp_tools, whose admin module unregisters its token admins.
    "oauth2_provider",
    "mcp_tools",
    # `manage.py dr_drill`: local tooling outside the application, which never imports it.
    "drill",
]

MIDDLEWARE = [
    # First: it turns what every other layer answers under /api/ and /hooks/ into JSON errors.
    "smarteros.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "smarteros.middleware.RequestContextMiddleware",
    "tenants.middleware.PlatformAdminScopeMiddleware",
    "smarteros.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "smarteros.urls"
# Error reports never show a credential (connection URLs included).
DEFAULT_EXCEPTION_REPORTER_FILTER = "smarteros.exception_filter.CredentialFilter"
DEFAULT_EXCEPTION_REPORTER = "smarteros.exception_filter.CredentialReporter"
ASGI_APPLICATION = "smarteros.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# The test profile hashes with a fast algorithm (the suite creates hundreds of users, each a
# third of a second of CPU at full PBKDF2 strength); every other profile keeps Django's default.
TEST_PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if ENVIRONMENT == "test":
    PASSWORD_HASHERS = TEST_PASSWORD_HASHERS

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor", BASE_DIR / "node_modules")]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
# Failed sign-ins per username and address before the console and admin refuse for a while.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 300, minimum=1)
# Failed sign-ins for one account from every address together: a guesser rotating addresses.
LOGIN_MAX_ACCOUNT_FAILURES = env_int("LOGIN_MAX_ACCOUNT_FAILURES", 50, minimum=1)
# Reverse proxies (addresses or networks) whose X-Forwarded-For names the client. Empty: the
# connecting peer is the client, and X-Forwarded-For is anyone's to write.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        report_problem(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network")
LOGOUT_REDIRECT_URL = "/login/"

SESSION_COOKIE_SECURE = IS_PRODUCTION
CSRF_COOKIE_SECURE = IS_PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if IS_PRODUCTION else None

SMARTEROS_ENV = ENVIRONMENT

# Locally static files are served straight from the finders (node_modules included); production
# runs `collectstatic` into STATIC_ROOT.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
# Looked up per request locally: indexing every file the finders know (node_modules included)
# up front costs seconds on the first request.
WHITENOISE_AUTOREFRESH = not IS_PRODUCTION
