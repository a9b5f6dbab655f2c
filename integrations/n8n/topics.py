"""The tenant topics an n8n trigger may watch: one list, read by `n8n_create_trigger` (what it
accepts) and by the forwarding flow (what it subscribes to), so the two cannot drift apart."""

from __future__ import annotations

from smarteros.events.catalog import CATALOG

# A forward emits n8n.workflow.triggered on n8n.automation.trigger; a trigger watching that
# topic would start itself again for every event it forwards, without end.
_NOT_FORWARDED = frozenset({"n8n.automation.trigger"})

FORWARDED_TOPICS: tuple[str, ...] = tuple(
    spec.name for spec in CATALOG if spec.per_tenant and spec.name not in _NOT_FORWARDED
)

# The consumer group that forwards events of these topics to the subscribed workflows.
FORWARD_GROUP = "flow-n8n-forward"
