"""Event types of operation calls."""

from __future__ import annotations

from smarteros.events.schemas import EventData, event_type


@event_type("operation.called")
class OperationCalled(EventData):
    operation: str
    service: str
    surface: str
    status: str
    error_type: str = ""
    latency_ms: float
    input_bytes: int = 0
    output_bytes: int = 0
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    session_id: str = ""


@event_type("agent.action")
class AgentAction(EventData):
    operation: str
    surface: str
    status: str
    session_id: str = ""
