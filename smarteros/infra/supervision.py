"""What the local supervisor (`make run`, scripts/stack_supervisor.py) publishes about its
processes: state, restarts, last exit. Absent outside `make run`, and when it stopped."""

from __future__ import annotations

import json
import os
from typing import Any

from smarteros.infra.redis import get_redis

# Written by scripts/stack_supervisor.py (STATUS_KEY), which cannot import Django code.
SUPERVISOR_KEY = "smarteros:stack:processes"


def supervisor_key(stack_id: str | None = None) -> str:
    """This stack's key: the supervisor gives its processes SMARTEROS_STACK_ID."""
    return f"{SUPERVISOR_KEY}:{os.environ.get('SMARTEROS_STACK_ID', '') if stack_id is None else stack_id}"


def supervisor_status() -> dict[str, dict[str, Any]]:
    """Each supervised process's state ("running", "restarting", "crash-loop") and counters."""
    raw = get_redis().get(supervisor_key())
    if not raw:
        return {}
    try:
        processes = json.loads(raw).get("processes", {})
    except (ValueError, AttributeError):
        return {}
    return processes if isinstance(processes, dict) else {}
