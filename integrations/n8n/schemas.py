"""What an n8n workflow posts back to /hooks/n8n/<tenant>/."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from integrations.events import N8nWorkflowResult


class N8nResultIn(N8nWorkflowResult):
    """A workflow result as posted: the event's data, with the execution id required, since it
    is what makes a repeated post of the same result a duplicate. In the workflow's HTTP Request
    node: `"execution_id": "{{ $execution.id }}"`."""

    execution_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="The n8n execution that produced the result ($execution.id)."
    )
