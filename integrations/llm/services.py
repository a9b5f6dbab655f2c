"""Which LLM a tenant's replies use, and one call to it with its token usage recorded.

A tenant's `llm` connection (settings: provider, base_url, model, max_tokens, daily_token_budget;
secret: api_key) overrides the platform defaults (LLM_* settings); `max_tokens` defaults to, and
may not exceed, what integrations/llm/models.py gives for the model. A tenant without one falls back
to the LLM fields of its WhatsApp connection (llm_api_key, llm_base_url, llm_model), the older way
of configuring the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings

from integrations.connections import connection_credentials
from integrations.llm.client import (
    ANTHROPIC,
    OPENAI_COMPATIBLE,
    PROVIDERS,
    AnthropicLlm,
    LlmReply,
    LlmRequest,
    OpenAICompatibleLlm,
)
from integrations.llm.errors import LlmBudgetExhausted
from integrations.llm.models import max_tokens_limit, model_family, reply_budget
from integrations.models import IntegrationConnection
from smarteros.errors import NotConnected
from smarteros.infra.redis import get_redis
from tenants.models import Tenant
from tenants.scope import tenant_read_scope

if TYPE_CHECKING:
    from mcp_tools.context import SampleFn

MCP_SAMPLING = "mcp_sampling"  # the reply's provider when the MCP client's model wrote it


@dataclass(frozen=True)
class LlmSettings:
    provider: str
    base_url: str
    model: str
    max_tokens: int
    daily_token_budget: int
    api_key: str


def llm_config_validate(config: dict[str, Any]) -> None:
    """Refuse an `llm` connection's settings that could not work, naming the field."""
    provider = config.get("provider") or settings.LLM_PROVIDER
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    # base_url itself is checked by connection_config_check (the egress gate's URL check).
    base_url = str(config.get("base_url") or "")
    if provider == OPENAI_COMPATIBLE and not (base_url or settings.LLM_BASE_URL):
        raise ValueError("base_url is required for an openai_compatible provider")
    model = str(config.get("model") or settings.LLM_MODEL)
    for name, low, high in (
        ("max_tokens", 1, max_tokens_limit(model)),
        ("daily_token_budget", 0, 10**12),
    ):
        if config.get(name) in (None, ""):
            continue
        try:
            value = int(config[name])
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number") from None
        if not low <= value <= high:
            why = ""
            if name == "max_tokens" and model_family(model):
                why = f", the most output tokens the model {model} is documented to write"
            raise ValueError(f"{name} must be between {low} and {high}{why}")


def _int(value: Any, default: int) -> int:
    return int(value) if value not in (None, "") else default


def llm_settings(*, tenant: Tenant) -> LlmSettings:
    """The tenant's LLM: its `llm` connection over the platform defaults, else the WhatsApp
    connection's llm_* fields; NotConnected if it has no API key for one."""
    with tenant_read_scope(tenant.pk):
        connections = {
            c.provider: c
            for c in IntegrationConnection.objects.filter(
                tenant=tenant, provider__in=("llm", "whatsapp")
            ).exclude(credentials_ciphertext="")
        }
    for connection in connections.values():
        connection.tenant = tenant  # already at hand: no read of the tenants table
    if "llm" in connections:
        config = connections["llm"].config
        api_key = connection_credentials(connections["llm"]).get("api_key", "")
    elif "whatsapp" in connections:
        legacy = connections["whatsapp"].config
        api_key = connection_credentials(connections["whatsapp"]).get("llm_api_key", "")
        config = {"base_url": legacy.get("llm_base_url"), "model": legacy.get("llm_model")}
    else:
        api_key, config = "", {}
    if not api_key:
        raise NotConnected(
            f"the LLM is not connected for tenant {tenant.slug}; a tenant admin adds its llm "
            "connection (provider, model, api_key) on the console's Integrations page "
            f"(/tenants/{tenant.slug}/integrations/)"
        )
    model = config.get("model") or settings.LLM_MODEL
    return LlmSettings(
        provider=config.get("provider") or settings.LLM_PROVIDER,
        base_url=config.get("base_url") or settings.LLM_BASE_URL,
        model=model,
        # Refused above the model's limit when saved; capped here too, for a budget saved before
        # the platform's default model changed.
        max_tokens=min(
            _int(config.get("max_tokens"), reply_budget(model)), max_tokens_limit(model)
        ),
        daily_token_budget=_int(config.get("daily_token_budget"), settings.LLM_DAILY_TOKEN_BUDGET),
        api_key=api_key,
    )


def llm_configured(*, tenant: Tenant) -> bool:
    try:
        llm_settings(tenant=tenant)
    except NotConnected:
        return False
    return True


def _budget_key(tenant: Tenant, now: datetime) -> str:
    return f"llm:tokens:{tenant.pk}:{now:%Y%m%d}"


def llm_tokens_spent_today(*, tenant: Tenant) -> int:
    return int(get_redis().get(_budget_key(tenant, datetime.now(UTC))) or 0)


@dataclass(frozen=True)
class TokenBudget:
    tokens: int  # per UTC day; 0: no budget
    set_by: str  # who set it, for the error and the console


def llm_token_budget(*, tenant: Tenant, connection_budget: int) -> TokenBudget:
    """The tenant's daily LLM token budget: the platform's (its plan's, or one a platform admin
    set for it) unless its llm connection sets a lower one."""
    if tenant.llm_tokens_per_day is not None:
        platform = TokenBudget(tenant.llm_tokens_per_day, "the platform for this tenant")
    else:
        plan_budget = settings.LLM_TOKENS_PER_DAY_BY_PLAN.get(tenant.plan, 0)
        platform = TokenBudget(plan_budget, f"its plan ({tenant.plan})")
    connection = TokenBudget(connection_budget, "its llm connection")
    budgets = [b for b in (platform, connection) if b.tokens > 0]
    return min(budgets, key=lambda b: b.tokens) if budgets else TokenBudget(0, "")


def llm_budget_use(*, tenant: Tenant) -> tuple[int, TokenBudget]:
    """Tokens spent today and the budget, for the console (reads no credentials)."""
    with tenant_read_scope(tenant.pk):
        connection = IntegrationConnection.objects.filter(tenant=tenant, provider="llm").first()
    config = connection.config if connection is not None else {}
    budget = llm_token_budget(
        tenant=tenant,
        connection_budget=_int(config.get("daily_token_budget"), settings.LLM_DAILY_TOKEN_BUDGET),
    )
    return llm_tokens_spent_today(tenant=tenant), budget


def _budget_check(tenant: Tenant, budget: TokenBudget) -> None:
    if budget.tokens <= 0:
        return
    now = datetime.now(UTC)
    spent = int(get_redis().get(_budget_key(tenant, now)) or 0)
    if spent >= budget.tokens:
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        seconds = max(1, int((midnight - now).total_seconds()))
        raise LlmBudgetExhausted(
            f"tenant {tenant.slug} spent its daily LLM budget ({spent}/{budget.tokens} tokens, "
            f"set by {budget.set_by}); it renews at 00:00 UTC, in {seconds}s",
            retry_after=seconds,
        )


def _budget_spend(tenant: Tenant, tokens: int) -> None:
    key = _budget_key(tenant, datetime.now(UTC))
    pipe = get_redis().pipeline()
    pipe.incrby(key, tokens)
    pipe.expire(key, 2 * 24 * 3600)
    pipe.execute()


def llm_client(config: LlmSettings) -> AnthropicLlm | OpenAICompatibleLlm:
    timeout = float(settings.LLM_TIMEOUT_SECONDS)
    if config.provider == ANTHROPIC:
        return AnthropicLlm(config.api_key, config.model, config.base_url, timeout)
    return OpenAICompatibleLlm(config.api_key, config.model, config.base_url, timeout)


def llm_reply(
    *,
    tenant: Tenant,
    system: str,
    messages: list[dict[str, str]],
    origin: str,
    trace_id: str,
) -> LlmReply:
    """Have the tenant's LLM answer `messages`; the tokens it used count against the tenant's
    daily budget and are recorded in telemetry (llm_usage) with `origin` (what asked)."""
    from telemetry.recording import llm_usage_record

    config = llm_settings(tenant=tenant)
    _budget_check(
        tenant, llm_token_budget(tenant=tenant, connection_budget=config.daily_token_budget)
    )
    reply = llm_client(config).reply(
        LlmRequest(system=system, messages=messages, max_tokens=config.max_tokens)
    )
    llm_usage_record(
        tenant=tenant.slug,
        provider=reply.provider,
        model=reply.model,
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
        origin=origin,
        trace_id=trace_id,
    )
    # Counted whatever the budget: the console shows the day's use.
    _budget_spend(tenant, reply.tokens_in + reply.tokens_out)
    return reply


def llm_sample(
    *, sample: SampleFn, system: str, messages: list[dict[str, str]], max_tokens: int = 0
) -> LlmReply | None:
    """Have the MCP client's own model answer (MCP sampling): no tenant key, budget or tokens
    of the tenant's; the client reports no usage, so none is recorded. None when the connection
    cannot carry the request after all (then the tenant's LLM answers)."""
    sampled = sample(system, messages, max_tokens or settings.LLM_MAX_TOKENS)
    if sampled is None:
        return None
    text, model = sampled
    return LlmReply(text=text, model=model, provider=MCP_SAMPLING, tokens_in=0, tokens_out=0)
