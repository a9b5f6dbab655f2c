"""n8n operations: start workflows, read executions and workflows, subscribe workflows to topics."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from effects.models import Effect
from effects.schemas import EffectOut, IdempotencyKey, idempotency_key_field
from effects.services import effect_perform_on_commit, effect_record
from integrations.connections import connection_require
from integrations.models import N8nTrigger
from integrations.n8n.client import N8nClient
from integrations.n8n.effects import n8n_client_for
from integrations.n8n.topics import FORWARDED_TOPICS
from integrations.n8n.triggers import TRIGGER_AUTH_HEADER, trigger_secret_issue
from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import Input, Output

WebhookPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9/_-]{0,199}$"),
    Field(
        description="Path of the workflow's production webhook, the part after /webhook/ "
        "(or the connection's webhook_prefix).",
        examples=["order-created"],
    ),
]


def n8n_client(ctx: OperationContext) -> N8nClient:
    return n8n_client_for(tenant=ctx.tenant)


class TriggerIn(Input):
    webhook_path: WebhookPath
    payload: dict[str, Any] = Field(
        default_factory=dict, description="JSON body passed to the workflow."
    )
    idempotency_key: IdempotencyKey | None = idempotency_key_field()


class TriggerOut(Output):
    webhook_path: str = Field(description="The webhook called.")
    response: Any = Field(
        default=None, description="What the workflow's webhook answered, once done."
    )
    effect: EffectOut = Field(description="The trigger: done, or pending (retried) or failed.")

    def settle(self, effect: Effect) -> None:
        self.effect = EffectOut.of(effect)
        self.response = (effect.result or {}).get("response")


@operation(
    service="n8n",
    title="Trigger n8n workflow",
    permission="n8n.write",
    open_world=True,
    emits=("n8n.workflow.triggered",),
)
def trigger_workflow(ctx: OperationContext, params: TriggerIn) -> TriggerOut:
    """Start an n8n workflow through its production webhook with a JSON payload, once per
    idempotency_key (sent to the workflow in an Idempotency-Key header)."""
    connection_require(tenant=ctx.tenant, provider="n8n")
    effect = effect_record(
        tenant=ctx.tenant,
        kind="n8n.trigger_workflow",
        key=params.idempotency_key or uuid.uuid4().hex,
        payload={"webhook_path": params.webhook_path, "body": params.payload},
        trace_id=ctx.trace_id,
        inline=True,
    )
    out = TriggerOut(webhook_path=params.webhook_path, effect=EffectOut.of(effect))
    effect_perform_on_commit(effect, then=out.settle)
    return out


class ExecutionIn(Input):
    execution_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")] = Field(
        description="n8n execution id (digits)."
    )
    include_data: bool = Field(
        False, description="Also return the execution's data (each node's input and output)."
    )


class ExecutionOut(Output):
    execution_id: str = Field(description="Execution id.")
    workflow_id: str = Field(description="The workflow it ran.")
    status: str = Field(description="success, error, running, waiting, canceled...")
    finished: bool = Field(description="Whether it has finished.")
    started_at: str | None = Field(None, description="Start time (ISO 8601).")
    stopped_at: str | None = Field(None, description="Stop time (ISO 8601), if stopped.")
    data: dict[str, Any] | None = Field(
        None, description="With include_data: n8n's execution data (resultData.runData per node)."
    )


@operation(
    service="n8n", title="Get n8n execution", permission="n8n.read", read_only=True, open_world=True
)
def get_execution(ctx: OperationContext, params: ExecutionIn) -> ExecutionOut:
    """Status and timing of one n8n workflow execution, and with include_data what each node
    received and produced."""
    data = n8n_client(ctx).get_execution(params.execution_id, include_data=params.include_data)
    return ExecutionOut(
        execution_id=str(data.get("id", params.execution_id)),
        workflow_id=str(data.get("workflowId", "")),
        status=str(data.get("status", "")),
        finished=bool(data.get("finished")),
        started_at=data.get("startedAt"),
        stopped_at=data.get("stoppedAt"),
        data=data.get("data") if params.include_data else None,
    )


class ListWorkflowsIn(Input):
    active: bool | None = Field(
        None, description="Only active (true) or inactive (false) workflows; omit for all."
    )
    limit: int = Field(100, ge=1, le=250, description="Workflows per page (1-250).")
    cursor: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None, description="next_cursor of a previous page."
    )


class WorkflowOut(Output):
    id: str = Field(description="Workflow id.")
    name: str = Field(description="Workflow name.")
    active: bool = Field(description="Whether it is active.")


class ListWorkflowsOut(Output):
    workflows: list[WorkflowOut] = Field(description="This page of workflows.")
    next_cursor: str | None = Field(
        None, description="Pass as cursor for the next page; empty at the end."
    )


@operation(
    service="n8n",
    title="List n8n workflows",
    permission="n8n.read",
    read_only=True,
    open_world=True,
)
def list_workflows(ctx: OperationContext, params: ListWorkflowsIn) -> ListWorkflowsOut:
    """List the workflows of the tenant's n8n instance, page by page."""
    data = n8n_client(ctx).list_workflows(
        active=params.active, limit=params.limit, cursor=params.cursor
    )
    return ListWorkflowsOut(
        workflows=[
            WorkflowOut(
                id=str(w.get("id")), name=str(w.get("name", "")), active=bool(w.get("active"))
            )
            for w in data.get("data", [])
        ],
        next_cursor=data.get("nextCursor"),
    )


TenantTopic = Annotated[
    str,
    StringConstraints(
        pattern="^(" + "|".join(name.replace(".", r"\.") for name in FORWARDED_TOPICS) + ")$"
    ),
    Field(
        description="A tenant topic whose events are forwarded: "
        + ", ".join(FORWARDED_TOPICS)
        + "."
    ),
]


class CreateTriggerIn(Input):
    topic: TenantTopic
    webhook_path: WebhookPath
    event_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,200}$")] | None = Field(
        None, description="Only events of this type, e.g. shopify.webhook.received; omit for all."
    )
    rotate_secret: bool = Field(
        False,
        description="For an existing subscription: issue a new header secret (the old one stops "
        "working once the workflow's credential holds the new one).",
    )


class CreateTriggerOut(Output):
    topic: str = Field(description="The tenant topic watched.")
    webhook_path: str = Field(description="The workflow webhook events are posted to.")
    event_type: str = Field(description="The event type filter; empty for all.")
    created: bool = Field(description="False if the same subscription existed already.")
    auth_header_name: str = Field(
        description="Header every forward carries: the Name of the Webhook node's Header Auth "
        "credential."
    )
    auth_header_value: str | None = Field(
        None,
        description="The secret, shown only now (on creation or rotation): the Value of that "
        "credential. Null when the subscription existed and kept its secret.",
    )


@operation(
    service="n8n",
    title="Subscribe n8n workflow to a topic",
    permission="n8n.write",
    idempotent=True,
)
def create_trigger(ctx: OperationContext, params: CreateTriggerIn) -> CreateTriggerOut:
    """Subscribe an n8n workflow (by its webhook) to one of the tenant's topics: every matching
    event is posted to the workflow with a secret header for its Webhook node's Header Auth
    (the secret is returned once, at creation or rotation)."""
    connection_require(tenant=ctx.tenant, provider="n8n")
    trigger, created = N8nTrigger.objects.get_or_create(
        tenant=ctx.tenant,
        topic=params.topic,
        event_type=params.event_type or "",
        webhook_path=params.webhook_path,
    )
    secret = None
    if created or params.rotate_secret or not trigger.auth_secret_ciphertext:
        secret = trigger_secret_issue(trigger)
    return CreateTriggerOut(
        topic=trigger.topic,
        webhook_path=trigger.webhook_path,
        event_type=trigger.event_type,
        created=created,
        auth_header_name=TRIGGER_AUTH_HEADER,
        auth_header_value=secret,
    )
