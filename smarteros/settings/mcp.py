import re
from typing import Any

from .env import env_bool, env_int, env_json, env_list, report_problem
from .profile import IS_PRODUCTION


def stdio_servers(name: str) -> dict[str, dict[str, Any]]:
    value = env_json(name, "")
    servers: dict[str, dict[str, Any]] = {}
    if value is None:
        return servers
    if not isinstance(value, dict):
        report_problem(f"{name} must be a JSON object of name -> {{command, args, env}}")
        return servers
    for entry, spec in value.items():
        ok = (
            re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", entry)
            and isinstance(spec, dict)
            and isinstance(spec.get("command"), str)
            and spec["command"]
            and isinstance(spec.get("args", []), list)
            and all(isinstance(a, str) for a in spec.get("args", []))
            and isinstance(spec.get("env", {}), dict)
            and all(isinstance(v, str) for v in spec.get("env", {}).values())
            and set(spec) <= {"command", "args", "env"}
        )
        if not ok:
            report_problem(
                f'{name}: entry {entry!r} must be {{"command": str, "args": [str], '
                f'"env": {{str: str}}}} with a name of letters, digits, _ or -'
            )
            continue
        servers[entry] = {
            "command": spec["command"],
            "args": list(spec.get("args", [])),
            "env": dict(spec.get("env", {})),
        }
    return servers


# Browsers may only reach /mcp from these origins (DNS-rebinding protection); clients that send
# no Origin header (Claude Desktop, SDK clients) are not affected.
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 1000, minimum=1)
# Days between a tenant's deletion and the removal of its topics and Vault key.
TENANT_DELETION_GRACE_DAYS = env_int("TENANT_DELETION_GRACE_DAYS", 30, minimum=0)
# When Redis is unreachable: true lets requests through (default), false refuses them (429).
RATE_LIMIT_FAIL_OPEN = env_bool("RATE_LIMIT_FAIL_OPEN", True)
# Largest accepted operation input, in bytes of JSON.
OPERATION_MAX_INPUT_BYTES = env_int("OPERATION_MAX_INPUT_BYTES", 262144, minimum=1024)
# Time limit for a call to an upstream MCP server (execute_tool, list_tools).
UPSTREAM_MCP_TIMEOUT_SECONDS = env_int("UPSTREAM_MCP_TIMEOUT_SECONDS", 15, minimum=1)
# tools/list page size (MCP pagination).
MCP_TOOLS_PAGE_SIZE = env_int("MCP_TOOLS_PAGE_SIZE", 50, minimum=1)
# With `/mcp?tools=top` (or `mcp_serve --tools top`): tools/list holds tools_search and this many
# of the tenant's most used tools, for clients with small context windows.
MCP_TOP_TOOLS = env_int("MCP_TOP_TOOLS", 8, minimum=1)
# Threads per process that run MCP tool calls (each keeps one database connection).
MCP_OPERATION_THREADS = env_int("MCP_OPERATION_THREADS", 8, minimum=1)
# How long a web process reuses an API key it has checked (its tenant included) before it reads
# the database again: the bound on revocation. A revoked key, or a key of a tenant suspended,
# stops working within this many seconds on every web process. 0 checks on every call.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5, minimum=0)
# How stale mcp_serve's view of its API key may get: a revoked key stops working within this.
MCP_KEY_RECHECK_SECONDS = env_int("MCP_KEY_RECHECK_SECONDS", 10, minimum=0)
# Largest JSON nesting accepted in operation input (deeper input is refused before parsing it
# further: recursion in the validators would otherwise end in a RecursionError).
OPERATION_MAX_INPUT_DEPTH = env_int("OPERATION_MAX_INPUT_DEPTH", 64, minimum=8)
# An operation that queues an event type missing from its `emits=` fails outside production
# (so the suite finds the drift) and is only logged in production.
OPERATION_EMITS_STRICT = env_bool("OPERATION_EMITS_STRICT", not IS_PRODUCTION)
# Largest REST request body, in bytes; bigger bodies get 413 without being parsed.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1048576, minimum=1024)
# Largest line mcp_serve reads over stdio; a longer one is answered with an error and skipped.
MCP_STDIO_MAX_LINE_BYTES = env_int("MCP_STDIO_MAX_LINE_BYTES", 1048576, minimum=1024)
# An idle `GET /mcp` event stream is closed after this many seconds (clients reconnect).
MCP_SSE_MAX_SECONDS = env_int("MCP_SSE_MAX_SECONDS", 60, minimum=1)
# Calls refused for a bad API key, per client address and minute, before further ones get 429.
AUTH_FAILURES_PER_MINUTE = env_int("AUTH_FAILURES_PER_MINUTE", 20, minimum=1)

# Upstream MCP servers tenants register (HTTP only). https is required in production.
UPSTREAM_MCP_REQUIRE_HTTPS = env_bool("UPSTREAM_MCP_REQUIRE_HTTPS", IS_PRODUCTION)
UPSTREAM_MCP_MAX_RESPONSE_BYTES = env_int("UPSTREAM_MCP_MAX_RESPONSE_BYTES", 4194304, minimum=65536)
UPSTREAM_MCP_MAX_REDIRECTS = env_int("UPSTREAM_MCP_MAX_REDIRECTS", 3, minimum=0)
# Where upstreams may connect is the egress gate's: EGRESS_ALLOWED_NETWORKS and
# EGRESS_BLOCKED_NETWORKS (settings/egress.py).
# Platform-defined stdio upstreams, which platform admins enable per tenant in the admin:
# JSON {"name": {"command": "...", "args": ["..."], "env": {"NAME": "value"}}}. Tenants never
# supply a command; an entry runs with PATH and its own env only.
UPSTREAM_MCP_STDIO_SERVERS = stdio_servers("UPSTREAM_MCP_STDIO_SERVERS")
