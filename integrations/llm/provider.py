"""The LLM that writes the bot's replies as a provider: it only answers calls (no webhook, no
external id)."""

from __future__ import annotations

from integrations.providers import Config, ProviderSpec, provider_register


def _check_config(config: Config) -> Config:
    from integrations.llm.services import llm_config_validate

    llm_config_validate(config)
    return config


LLM = provider_register(
    ProviderSpec(
        name="llm",
        order=50,
        settings=("provider", "base_url", "model", "max_tokens", "daily_token_budget"),
        secrets=("api_key",),
        required_secrets=("api_key",),
        setup="The LLM that writes the bot's replies: provider anthropic or openai_compatible "
        "(then a base_url), the model, and the tenant's own API key. Empty settings use the "
        "platform's; daily_token_budget may only lower the platform's budget.",
        url_settings=("base_url",),
        check_config=_check_config,
    )
)
