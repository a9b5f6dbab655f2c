from .env import env_int, env_list

# Browsers may only reach /mcp from these origins (DNS-rebinding protection); clients that send
# no Origin header (Claude Desktop, SDK clients) are not affected.
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 1000, minimum=1)
