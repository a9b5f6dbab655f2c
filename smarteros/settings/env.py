"""One fail-fast reader for every setting that comes from the environment.

Settings modules call `env_str`, `env_int`, `env_bool`, `env_url` or `env_list`. A value that is
missing (when required) or malformed is collected, and `raise_if_invalid()` stops start-up with
every bad name at once, so an operator fixes them in one go instead of one per restart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()
_problems: list[str] = []


def load_dotenv_file(path: Path) -> None:
    """Read KEY=VALUE lines from `path` into os.environ; real environment variables win."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def _raw(name: str, default: object) -> object:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _MISSING:
            _problems.append(f"{name} is required but not set")
        return default
    return value


def env_str(name: str, default: object = _MISSING) -> str:
    value = _raw(name, default)
    return "" if value is _MISSING else str(value)


def env_int(name: str, default: object = _MISSING, *, minimum: int | None = None) -> int:
    value = _raw(name, default)
    if value is _MISSING:
        return 0
    try:
        number = int(str(value))
    except ValueError:
        _problems.append(f"{name} must be an integer, got {value!r}")
        return 0
    if minimum is not None and number < minimum:
        _problems.append(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: object = _MISSING) -> float:
    value = _raw(name, default)
    if value is _MISSING:
        return 0.0
    try:
        return float(str(value))
    except ValueError:
        _problems.append(f"{name} must be a number, got {value!r}")
        return 0.0


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: object = _MISSING) -> bool:
    value = _raw(name, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or value is _MISSING:
        return False
    _problems.append(f"{name} must be one of true/false/1/0/yes/no/on/off, got {value!r}")
    return False


def env_url(name: str, default: object = _MISSING, *, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if not value:
        return value
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.hostname:
        _problems.append(
            f"{name} must be a URL with scheme {' or '.join(schemes)} and a host, got {value!r}"
        )
    return value


def env_list(name: str, default: object = _MISSING) -> list[str]:
    value = env_str(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_json(name: str, default: object = _MISSING) -> object:
    """A JSON value (an object, a list...); malformed JSON is reported with the others."""
    value = env_str(name, default)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        _problems.append(f"{name} must be JSON: {exc}")
        return None


def report_problem(message: str) -> None:
    """Record a bad setting found by a settings module's own check (stops start-up with the rest)."""
    _problems.append(message)


def env_choice(name: str, default: object = _MISSING, *, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value and value not in choices:
        _problems.append(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def raise_if_invalid() -> None:
    """Stop start-up naming every missing or malformed setting."""
    if _problems:
        lines = "\n  - ".join(_problems)
        _problems.clear()
        raise ImproperlyConfigured(
            f"SmarterOS cannot start; fix these settings (see .env.example):\n  - {lines}"
        )
