"""The MCP server (official SDK, low-level `Server`) over the operation registry.

The registry supplies exact schemas, and the executor validates input and output itself, so
tools/list and tools/call here are thin. A server is built per principal: stdio binds the key from
the environment; HTTP resolves the bearer key on every request (stateless).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qs

try:
    import sniffio
except ImportError:  # anyio works without it
    sniffio = None  # type: ignore[assignment]

import anyio
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from django.conf import settings
from django.db import connections
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError, NoBackChannelError

from mcp_tools.context import OperationContext, Principal, SampleFn
from mcp_tools.executor import CallResult, execute, visible_operations
from mcp_tools.registry import Operation
from mcp_tools.tool_listing import tool_definition
from smarteros.context import new_trace_id
from smarteros.errors import AuthenticationFailed, UnknownOperation, UpstreamError
from smarteros.parsing import InvalidValue, parse_int

SERVER_NAME = "smarteros"
INSTRUCTIONS = (
    "SmarterOS tools for one shop (tenant): Shopify catalogue and orders, WhatsApp messages, n8n "
    "workflows, upstream MCP servers and telemetry. Tool errors name the field and rule to fix."
)

# May touch the database (stdio re-checks its bound key now and then), so it runs on an operation
# thread unless the server is told otherwise: HTTP finds the principal in the request scope.
PrincipalResolver = Callable[[ServerRequestContext[Any]], Principal]
T = TypeVar("T")
# JSON-RPC error code for a missing, unknown or revoked key (implementation-defined range).
UNAUTHENTICATED = -32001


def _page(items: list[Any], cursor: str | None) -> tuple[list[Any], str | None]:
    from django.conf import settings

    size = settings.MCP_TOOLS_PAGE_SIZE
    try:
        start = parse_int(cursor, field="cursor", minimum=0, maximum=len(items), default=0)
    except InvalidValue:
        raise MCPError(code=types.INVALID_PARAMS, message=f"invalid cursor: {cursor!r}") from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


@functools.cache
def operation_threads() -> ThreadPoolExecutor:
    """The threads operation calls run on. They live as long as the process: without a pool each
    keeps its own database connections between calls (anyio's own pool retires threads idle for
    10 s, and a client that calls every few minutes would pay a new connection each time); with
    DATABASE_POOL each borrows pooled connections for a call and gives them back after it."""
    from django.conf import settings

    return ThreadPoolExecutor(settings.MCP_OPERATION_THREADS, thread_name_prefix="operation")


async def in_operation_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking work (the database, upstream calls) off the event loop, in the caller's
    context (trace and tenant ids)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        operation_threads(), contextvars.copy_context().run, _releasing, func, *args
    )


def _releasing(func: Callable[..., T], *args: Any) -> T:
    # The copied context says "asyncio is running here" where sniffio is installed (the anthropic
    # SDK needs it), and anyio.run (upstream calls) would then refuse to start on this thread.
    sniffio_token = _no_async_library()
    try:
        return func(*args)
    finally:
        # With a pool (DATABASE_POOL), a thread gives its connections back after each call, so
        # idle operation threads hold no pool slot; without one, each keeps its own connection.
        for conn in connections.all(initialized_only=True):
            if conn.settings_dict["OPTIONS"].get("pool") and not conn.in_atomic_block:
                conn.close()
        if sniffio_token is not None:
            sniffio.current_async_library_cvar.reset(sniffio_token)


def _no_async_library() -> contextvars.Token[str | None] | None:
    """Mark this thread as running no event loop (it runs none: the loop is another thread's)."""
    if sniffio is None:
        return None
    return sniffio.current_async_library_cvar.set(None)


# An operation's tools/list entry, built once: its schemas are generated from pydantic models,
# which costs milliseconds per operation on every listing otherwise.
_tools: dict[str, tuple[Operation, types.Tool]] = {}


def _tool(op: Operation) -> types.Tool:
    cached = _tools.get(op.name)
    if cached is None or cached[0] is not op:  # a test may register another op by that name
        cached = (op, types.Tool.model_validate(tool_definition(op)))
        _tools[op.name] = cached
    return cached[1]


def _failed_effect(output: Any) -> dict[str, Any] | None:
    """The answer's outside effect (a send, a trigger, a Shopify write) if it failed."""
    effect = output.get("effect") if isinstance(output, dict) else None
    return effect if isinstance(effect, dict) and effect.get("state") == "failed" else None


def call_result(result: CallResult) -> types.CallToolResult:
    if result.ok:
        failed = _failed_effect(result.output)
        if failed is not None:
            # The call was recorded but the outside write gave up: an error a model (and
            # Claude Desktop) sees as one, with the effect's reason and id to act on.
            reason = (
                f"{failed.get('last_error') or 'failed'} (effect {failed.get('effect_id')}, "
                f"{failed.get('kind')}: failed after {failed.get('attempts')} attempt(s); read "
                "it with agent_get_effect, an operator retries it from the console)"
            )
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=reason)],
                structured_content=result.output,
                is_error=True,
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.output_json)],
            structured_content=result.output,
        )
    assert result.error is not None
    error = result.error.as_dict()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{error['code']}: {error['message']}")],
        is_error=True,
    )


# Built once: the check runs on every tools/call, and building these models costs more than it.
_SAMPLING = types.ClientCapabilities(sampling=types.SamplingCapability())


def _sampler(ctx: ServerRequestContext[Any], loop_token: Any) -> SampleFn | None:
    """MCP sampling for an operation thread, if the client declared it; None otherwise."""
    if not ctx.session.check_client_capability(_SAMPLING):
        return None

    async def create(system: str, messages: list[dict[str, str]], max_tokens: int) -> Any:
        with warnings.catch_warnings():
            # Deprecated from protocol 2026-07-28 (SEP-2577), still served to clients that
            # declare it at their handshake.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            return await ctx.session.create_message(
                [
                    types.SamplingMessage(
                        role=m["role"],  # type: ignore[arg-type]
                        content=types.TextContent(type="text", text=m["content"]),
                    )
                    for m in messages
                ],
                max_tokens=max_tokens,
                system_prompt=system,
                related_request_id=ctx.request_id,
            )

    def sample(
        system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[str, str] | None:
        try:
            result = anyio.from_thread.run(create, system, messages, max_tokens, token=loop_token)
        except NoBackChannelError:
            return None  # stateless HTTP: no way back to the client within this request
        except MCPError as exc:
            raise UpstreamError(f"the MCP client did not sample: {exc}") from None
        blocks = result.content if isinstance(result.content, list) else [result.content]
        text = "".join(getattr(block, "text", "") for block in blocks)
        return text.strip(), str(result.model)

    return sample


def _listing(ctx: ServerRequestContext[Any], default: str) -> str:
    """ "top" or "all": an HTTP client says which with `/mcp?tools=top`; stdio by its flag."""
    request = getattr(ctx, "request", None)
    if request is not None:
        query = parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
        if query.get("tools") == ["top"]:
            return "top"
    return default


def _top_tools(principal: Principal, ops: list[Operation]) -> list[Operation]:
    from mcp_tools.tool_search import tenant_usage, tools_top

    usage = tenant_usage(principal.tenant.slug) or {}
    return tools_top(ops, usage, settings.MCP_TOP_TOOLS)


def build_server(
    resolve_principal: PrincipalResolver,
    *,
    surface: str,
    resolver_blocks: bool = True,
    listing: str = "all",
) -> Server[Any]:
    """The MCP server for `surface`. `resolver_blocks=False` says resolve_principal touches no
    database (HTTP reads the request scope), so it runs on the event loop, without a thread.
    `listing="top"` lists only the tenant's most used tools and tools_search (for clients with
    small context windows); every tool the key may call can still be called."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        try:
            principal = (
                await in_operation_thread(resolve_principal, ctx)
                if resolver_blocks
                else resolve_principal(ctx)
            )
        except AuthenticationFailed as exc:
            raise MCPError(code=UNAUTHENTICATED, message=exc.message) from None
        ops = visible_operations(principal)
        if _listing(ctx, listing) == "top":
            ops = await in_operation_thread(_top_tools, principal, ops)
        page, next_cursor = _page(ops, params.cursor if params else None)
        tools = [_tool(op) for op in page]
        return types.ListToolsResult(tools=tools, next_cursor=next_cursor)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        cancel = threading.Event()
        loop_token = anyio.lowlevel.current_token()

        def progress(done: float, total: float | None, message: str | None) -> None:
            # The SDK sends notifications/progress only if the caller gave a progress token.
            anyio.from_thread.run(
                ctx.session.report_progress, done, total, message, token=loop_token
            )

        sample = _sampler(ctx, loop_token)

        def run() -> CallResult:
            try:
                principal = resolve_principal(ctx)
            except AuthenticationFailed as exc:
                return CallResult(operation=params.name, error=exc)
            op_ctx = OperationContext(
                principal=principal,
                surface=surface,
                trace_id=new_trace_id(),
                progress=progress,
                sample=sample,
                cancel_event=cancel,
            )
            return execute(
                params.name, params.arguments, principal=principal, surface=surface, context=op_ctx
            )

        try:
            result = await in_operation_thread(run)
        except anyio.get_cancelled_exc_class():
            # notifications/cancelled: tell the operation to stop at its next checkpoint.
            cancel.set()
            raise
        if isinstance(result.error, UnknownOperation):
            # Reported the way the SDK's own server does (a tool error naming the tool), with
            # the executor's suggestion of the closest names after it.
            hint = result.error.message.partition("; ")[2]
            text = f"Unknown tool: {params.name}" + (f"; {hint}" if hint else "")
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )
        return call_result(result)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[])

    async def complete(
        ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        # No prompts or resource templates to complete; an empty answer is the honest one.
        return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))

    async def set_logging_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        # Logs go to stderr and the platform's log pipeline, not to MCP clients; accepting the
        # level keeps handshake-era clients that always send it working.
        return types.EmptyResult()

    with warnings.catch_warnings():
        # logging/setLevel is deprecated from 2026-07-28 but still sent by older clients.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return Server(
            SERVER_NAME,
            version="0.1.0",
            title="SmarterOS",
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            # SmarterOS offers tools only; empty lists keep generic clients that ask for more happy.
            on_list_resources=list_resources,
            on_list_prompts=list_prompts,
            on_completion=complete,
            on_set_logging_level=set_logging_level,
        )
