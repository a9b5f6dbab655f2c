"""Which kind of deployment this is; production refuses the local defaults."""

from .env import _MISSING, env_choice

ENVIRONMENT = env_choice(
    "SMARTEROS_ENV", "development", choices=("development", "production", "test")
)
IS_PRODUCTION = ENVIRONMENT == "production"


def local_default(value: object) -> object:
    """A default that is fine on a developer's machine and must be set explicitly in production."""
    return _MISSING if IS_PRODUCTION else value
