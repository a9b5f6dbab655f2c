from .env import env_choice, env_int, env_str

# Platform defaults of the LLM that writes bot replies; a tenant's `llm` connection overrides
# each of them (and holds the API key, as Vault ciphertext).
LLM_PROVIDER = env_choice("LLM_PROVIDER", "anthropic", choices=("anthropic", "openai_compatible"))
# Empty: the provider's own endpoint (api.anthropic.com; an OpenAI-compatible one needs a URL).
LLM_BASE_URL = env_str("LLM_BASE_URL", "")
# claude-sonnet-4-5 reaches end-of-life on 2026-11-30 (the SDK warns on every call).
LLM_MODEL = env_str("LLM_MODEL", "claude-sonnet-5-5")
# The reply budget for a model integrations/llm/models.py does not know (a known model's is
# sized there, with room for thinking).
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 512, minimum=1)
# Tokens (input + output) one tenant may spend per UTC day; 0 = no budget.
LLM_DAILY_TOKEN_BUDGET = env_int("LLM_DAILY_TOKEN_BUDGET", 0, minimum=0)
LLM_TIMEOUT_SECONDS = env_int("LLM_TIMEOUT_SECONDS", 60, minimum=1)
# The platform's daily LLM token budget per plan (0 = none); a platform admin sets another for one
# tenant (Tenant.llm_tokens_per_day). A tenant's llm connection may only set a lower one.
LLM_TOKENS_PER_DAY_BY_PLAN = {
    "free": env_int("LLM_TOKENS_PER_DAY_FREE", 200_000, minimum=0),
    "pro": env_int("LLM_TOKENS_PER_DAY_PRO", 5_000_000, minimum=0),
    "enterprise": env_int("LLM_TOKENS_PER_DAY_ENTERPRISE", 0, minimum=0),
}
