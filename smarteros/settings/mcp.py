from .env import env_bool, env_int, env_list

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
# Threads per process that run MCP tool calls (each keeps one database connection).
MCP_OPERATION_THREADS = env_int("MCP_OPERATION_THREADS", 8, minimum=1)
# How stale mcp_serve's view of its API key may get: a revoked key stops working within this.
MCP_KEY_RECHECK_SECONDS = env_int("MCP_KEY_RECHECK_SECONDS", 10, minimum=0)
