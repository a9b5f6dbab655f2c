"""Event types of tenant provisioning."""

from __future__ import annotations

from smarteros.events.schemas import EventData, event_type


@event_type("tenant.provisioning.step")
class ProvisioningStep(EventData):
    step: str
    outcome: str
