"""Agent operations: sessions, upstream MCP servers, and telemetry of the caller's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from mcp_tools.context import OperationContext
from mcp_tools.models import AgentSession, UpstreamServer
from mcp_tools.registry import operation
from mcp_tools.schemas import Input, Output
from mcp_tools.upstream_network import url_refusal
from smarteros.errors import NotFound, PermissionDenied

ServerName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,64}$"),
    Field(
        description="Name of a registered upstream MCP server (letters, digits, _ and -).",
        examples=["catalog"],
    ),
]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]


class RegisterServerIn(Input):
    name: ServerName
    transport: Literal["http"] = Field(
        "http",
        description="Always 'http' (streamable HTTP). stdio servers are defined by the platform "
        "and enabled per tenant by its admins; a tenant never supplies a command.",
    )
    url: AnyHttpUrl = Field(
        description="Streamable HTTP endpoint: https (plain http only on local stacks), on a "
        "public address (loopback, private, link-local and metadata addresses are refused at "
        "every connection, redirects included)."
    )
    credentials: dict[HeaderName, Annotated[str, StringConstraints(max_length=4000)]] = Field(
        default_factory=dict,
        max_length=20,
        description="Secret HTTP headers (e.g. Authorization). Stored only as Vault ciphertext; "
        "never returned.",
    )

    @field_validator("transport", mode="before")
    @classmethod
    def _http_only(cls, value: object) -> object:
        if value == "stdio":
            raise PydanticCustomError(
                "transport_not_allowed",
                "tenants register http(s) servers only; stdio servers are platform-defined",
            )
        return value

    @field_validator("url")
    @classmethod
    def _reachable(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        reason = url_refusal(str(value))
        if reason:
            raise PydanticCustomError("url_not_allowed", "{reason}", {"reason": reason})
        return value


class ServerOut(Output):
    name: str = Field(description="Server name.")
    transport: Literal["http", "stdio"] = Field(
        description="How SmarterOS reaches it: 'http', or 'stdio' for a platform-defined server."
    )
    url: str = Field(description="Endpoint for 'http'; empty for 'stdio'.")
    has_credentials: bool = Field(description="Whether credentials are stored (as ciphertext).")
    created: bool = Field(
        description="True if newly registered, false if an existing one was updated."
    )


@operation(
    service="agent",
    title="Register upstream MCP server",
    permission="agent.admin",
    idempotent=True,
)
def register_mcp_server(ctx: OperationContext, params: RegisterServerIn) -> ServerOut:
    """Register (or update) an upstream MCP server of the caller's tenant, reachable over
    streamable HTTP(S). Credentials are encrypted with the tenant's Vault key."""
    from mcp_tools.upstream import credentials_purpose
    from tenants.secrets import secret_encrypt

    existing = UpstreamServer.objects.filter(tenant=ctx.tenant, name=params.name).first()
    if existing is not None and existing.transport != UpstreamServer.Transport.HTTP:
        raise PermissionDenied(
            f"name: {params.name!r} is a platform-defined stdio server; choose another name"
        )
    ciphertext = ""
    if params.credentials:
        ciphertext = secret_encrypt(
            slug=ctx.tenant.slug, purpose=credentials_purpose(params.name), value=params.credentials
        )
    server, created = UpstreamServer.objects.update_or_create(
        tenant=ctx.tenant,
        name=params.name,
        defaults={
            "transport": UpstreamServer.Transport.HTTP,
            "url": str(params.url),
            "stdio_entry": "",
            "credentials_ciphertext": ciphertext,
        },
    )
    return ServerOut.model_validate(
        {
            "name": server.name,
            "transport": server.transport,
            "url": server.url,
            "has_credentials": bool(ciphertext),
            "created": created,
        }
    )


def _server(ctx: OperationContext, name: str) -> UpstreamServer:
    server = (
        UpstreamServer.objects.select_related("tenant").filter(tenant=ctx.tenant, name=name).first()
    )
    if server is None:
        raise NotFound(
            f"server: no upstream MCP server named {name!r} is registered for tenant {ctx.tenant.slug}"
        )
    return server


class ListToolsIn(Input):
    server: ServerName


class UpstreamTool(Output):
    name: str = Field(description="Tool name on the upstream server.")
    description: str = Field(description="The tool's description.")
    input_schema: dict[str, Any] = Field(description="The tool's JSON Schema for arguments.")


class ListToolsOut(Output):
    server: str = Field(description="The upstream server asked.")
    tools: list[UpstreamTool] = Field(description="Its tools.")


@operation(
    service="agent",
    title="List upstream tools",
    permission="agent.read",
    read_only=True,
    open_world=True,
)
def list_tools(ctx: OperationContext, params: ListToolsIn) -> ListToolsOut:
    """List the tools offered by one of the tenant's registered upstream MCP servers."""
    from mcp_tools.upstream import upstream_list_tools

    server = _server(ctx, params.server)
    tools = upstream_list_tools(server)
    return ListToolsOut(server=server.name, tools=[UpstreamTool(**t) for t in tools])


class ExecuteToolIn(Input):
    server: ServerName
    tool: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_.-]{1,128}$")] = Field(
        description="Name of the tool on the upstream server."
    )
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Arguments for the tool, as its input schema describes."
    )


class ExecuteToolOut(Output):
    server: str = Field(description="The upstream server called.")
    tool: str = Field(description="The tool called.")
    is_error: bool = Field(description="True if the upstream tool reported an error.")
    text: str = Field(description="The text content the tool returned.")
    structured: Any = Field(None, description="The structured content the tool returned, if any.")


@operation(
    service="agent",
    title="Execute upstream tool",
    permission="agent.execute",
    open_world=True,
    emits=("agent.action",),
    atomic=False,  # no transaction held open while the upstream server works
)
def execute_tool(ctx: OperationContext, params: ExecuteToolIn) -> ExecuteToolOut:
    """Call a tool on one of the tenant's registered upstream MCP servers and return its
    result. Fails with a clear error if the server is down, slow or answers garbage."""
    from mcp_tools.upstream import upstream_call_tool

    server = _server(ctx, params.server)
    result = upstream_call_tool(server, params.tool, params.arguments)
    return ExecuteToolOut(server=server.name, tool=params.tool, **result)


class CreateSessionIn(Input):
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="A name for the session, e.g. the conversation or agent run."
    )
    metadata: dict[
        Annotated[str, StringConstraints(max_length=100)],
        Annotated[str, StringConstraints(max_length=1000)],
    ] = Field(
        default_factory=dict, max_length=50, description="Free-form string labels (at most 50)."
    )


class SessionOut(Output):
    session_id: str = Field(description="Session id; pass it to later calls to group them.")
    label: str = Field(description="The session's label.")
    created_at: datetime = Field(description="Creation time (UTC).")


@operation(
    service="agent",
    title="Create agent session",
    permission="agent.execute",
)
def create_session(ctx: OperationContext, params: CreateSessionIn) -> SessionOut:
    """Start an agent session for the caller's tenant, to group later calls in telemetry."""
    session = AgentSession.objects.create(
        tenant=ctx.tenant, label=params.label, metadata=params.metadata
    )
    return SessionOut(
        session_id=str(session.id), label=session.label, created_at=session.created_at
    )


class TelemetryIn(Input):
    window_minutes: int = Field(
        60, ge=1, le=43200, description="Look-back window in minutes (1 to 43200 = 30 days)."
    )
    operation: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,64}$")] | None = Field(
        None, description="Only this operation; omit for all."
    )


class OperationStats(Output):
    operation: str = Field(description="Operation name.")
    calls: int = Field(description="Calls in the window.")
    errors: int = Field(description="Calls that failed.")
    p50_ms: float = Field(description="Median latency in milliseconds.")
    p95_ms: float = Field(description="95th percentile latency in milliseconds.")
    tokens_in: int = Field(description="LLM input tokens used.")
    tokens_out: int = Field(description="LLM output tokens used.")


class TelemetryOut(Output):
    tenant: str = Field(description="Tenant slug.")
    window_minutes: int = Field(description="The window used.")
    operations: list[OperationStats] = Field(description="Per-operation figures, busiest first.")


@operation(service="agent", title="Get telemetry", permission="agent.read", read_only=True)
def get_telemetry(ctx: OperationContext, params: TelemetryIn) -> TelemetryOut:
    """Per-operation call counts, error counts, latency percentiles and token usage for the
    caller's tenant, from the telemetry store."""
    from telemetry.queries import TelemetryUnavailable, operation_stats

    try:
        rows = operation_stats(
            tenant=ctx.tenant.slug, window_minutes=params.window_minutes, operation=params.operation
        )
    except TelemetryUnavailable as exc:
        from smarteros.errors import DependencyUnavailable

        raise DependencyUnavailable(str(exc)) from None
    return TelemetryOut(
        tenant=ctx.tenant.slug,
        window_minutes=params.window_minutes,
        operations=[OperationStats(**r) for r in rows],
    )


class ToolSearchIn(Input):
    query: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Words describing what the tool should do (matched against tool names, "
        "titles and descriptions).",
        examples=["send a whatsapp message"],
    )
    limit: int = Field(10, ge=1, le=50, description="At most this many tools (1-50).")


class FoundTool(Output):
    name: str = Field(description="The tool's name, as tools/call takes it.")
    title: str = Field(description="The tool's title.")
    description: str = Field(description="What the tool does.")
    calls: int = Field(description="The tenant's calls of this tool in the usage window.")
    success_rate: float | None = Field(
        description="Share of those calls that succeeded (0-1); null when there were none."
    )


class ToolSearchOut(Output):
    tools: list[FoundTool] = Field(description="Matching tools this key may call, best first.")
    ranking: Literal["usage", "words"] = Field(
        description="'usage': ranked by the tenant's successful calls over the usage window, "
        "then by the words; 'words': the telemetry store did not answer, ranked by the words only."
    )
    usage_window_days: int = Field(description="The window the usage figures cover.")


@operation(service="tools", title="Search tools", permission="tools.search", read_only=True)
def search(ctx: OperationContext, params: ToolSearchIn) -> ToolSearchOut:
    """Find the tools this key may call whose name, title or description match the query,
    the tenant's most used (successful calls over the last 30 days) first. Every key may call
    it."""
    from mcp_tools.executor import visible_operations
    from mcp_tools.tool_search import USAGE_WINDOW_DAYS, tenant_usage, tools_rank

    found = tenant_usage(ctx.tenant.slug)
    ranking: Literal["usage", "words"] = "usage" if found is not None else "words"
    usage = found or {}
    matches = tools_rank(visible_operations(ctx.principal), params.query, usage, params.limit)
    return ToolSearchOut(
        tools=[
            FoundTool(
                name=m.op.name,
                title=m.op.title,
                description=m.op.description,
                calls=m.usage.calls,
                success_rate=round(m.usage.successful / m.usage.calls, 3)
                if m.usage.calls
                else None,
            )
            for m in matches
        ],
        ranking=ranking,
        usage_window_days=USAGE_WINDOW_DAYS,
    )
