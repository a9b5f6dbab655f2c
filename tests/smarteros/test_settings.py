"""A missing or malformed setting stops start-up with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.processes import ROOT

SETTING_NAMES = {
    line.split("=", 1)[0]
    for line in (ROOT / ".env.example").read_text().splitlines()
    if "=" in line and not line.startswith("#")
}


def start_django(*, then: str = "print('started')", **env: str) -> subprocess.CompletedProcess[str]:
    """Django set up in a fresh process with only `env` of the settings; `then` runs after."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {then}"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "smarteros.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_start_locally() -> None:
    result = start_django()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_malformed_values_are_named_together() -> None:
    result = start_django(
        DATABASE_URL="mysql://db/smarteros",
        KAFKA_SESSION_TIMEOUT_MS="six thousand",
        DJANGO_DEBUG="maybe",
        REDIS_URL="not a url",
    )
    assert result.returncode != 0
    assert "started" not in result.stdout
    for name in ("DATABASE_URL", "KAFKA_SESSION_TIMEOUT_MS", "DJANGO_DEBUG", "REDIS_URL"):
        assert name in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_production_requires_its_secrets() -> None:
    result = start_django(SMARTEROS_ENV="production")
    assert result.returncode != 0
    for name in (
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "DATABASE_PLATFORM_URL",
        "VAULT_TOKEN",
        "DJANGO_ALLOWED_HOSTS",
    ):
        assert f"{name} is required but not set" in result.stderr


def test_production_starts_when_configured() -> None:
    result = start_django(
        SMARTEROS_ENV="production",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://app:pw@db.internal:5432/smarteros",
        DATABASE_PLATFORM_URL="postgres://platform:pw@db.internal:5432/smarteros",
        VAULT_TOKEN="token",
        DJANGO_ALLOWED_HOSTS="smarteros.example.com",
    )
    assert result.returncode == 0, result.stderr


def test_dotenv_file_is_read_and_environment_wins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from smarteros.settings.env import load_dotenv_file

    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nSMARTEROS_T_ONE="from file"\nexport SMARTEROS_T_TWO=two\n')
    os.environ["SMARTEROS_T_TWO"] = "from env"
    try:
        load_dotenv_file(env_file)
        assert os.environ["SMARTEROS_T_ONE"] == "from file"
        assert os.environ["SMARTEROS_T_TWO"] == "from env"
    finally:
        os.environ.pop("SMARTEROS_T_ONE", None)
        os.environ.pop("SMARTEROS_T_TWO", None)


def test_a_database_pool_is_bounded_and_excludes_persistent_connections() -> None:
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS']['pool'], "
        "settings.DATABASES['platform']['OPTIONS']['pool'])"
    )
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    pooled = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "smarteros.settings",
            "DATABASE_POOL": "true",
            "DATABASE_POOL_MAX_SIZE": "4",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pooled.returncode == 0, pooled.stderr
    assert pooled.stdout.count("'max_size': 4") == 2
    both = start_django(DATABASE_POOL="true", DATABASE_CONN_MAX_AGE="60")
    assert both.returncode != 0 and "DATABASE_POOL and DATABASE_CONN_MAX_AGE" in both.stderr


def test_manage_py_names_a_bad_setting_instead_of_an_unrelated_traceback() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "KAFKA_TELEMETRY_LINGER_MS": "20000"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "SmarterOS cannot start; fix these settings (see .env.example):\n"
        "  - KAFKA_TELEMETRY_LINGER_MS (20000) must be less than KAFKA_TELEMETRY_RESEND_MS (10000)"
    )
