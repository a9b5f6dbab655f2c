"""SmarterOS settings, split by topic. Every value comes through `env.py` and is validated here."""

from pathlib import Path

from .env import load_dotenv_file, raise_if_invalid

BASE_DIR = Path(__file__).resolve().parent.parent.parent
load_dotenv_file(BASE_DIR / ".env")

from .base import *  # noqa: E402,F403
from .celery import *  # noqa: E402,F403
from .clerk import *  # noqa: E402,F403
from .clickhouse import *  # noqa: E402,F403
from .database import *  # noqa: E402,F403
from .effects import *  # noqa: E402,F403
from .egress import *  # noqa: E402,F403
from .evaluator import *  # noqa: E402,F403
from .kafka import *  # noqa: E402,F403
from .llm import *  # noqa: E402,F403
from .logging import *  # noqa: E402,F403
from .mcp import *  # noqa: E402,F403
from .oauth import *  # noqa: E402,F403
from .redis import *  # noqa: E402,F403
from .sentry import *  # noqa: E402,F403
from .shopify import *  # noqa: E402,F403
from .topics import *  # noqa: E402,F403
from .vault import *  # noqa: E402,F403
from .webhooks import *  # noqa: E402,F403
from .whatsapp import *  # noqa: E402,F403
from .workers import *  # noqa: E402,F403

raise_if_invalid()
