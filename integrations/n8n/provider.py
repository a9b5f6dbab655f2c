"""n8n as a provider: settings, secrets, checks, probe and the webhook its workflows post
results to."""

from __future__ import annotations

from typing import Any

from integrations.providers import Config, ProviderSpec, provider_register


def _check_config(config: Config) -> Config:
    from integrations.n8n.client import n8n_config_validate

    n8n_config_validate(config)
    return config


def _probe(config: Config, credentials: Any) -> str:
    from integrations.n8n.client import N8nClient
    from integrations.probe import shown

    workflows = N8nClient.of(config, credentials).list_workflows(active=None, limit=5, cursor=None)
    names = ", ".join(shown(w["name"]) for w in workflows.get("data", []))
    return f"n8n: workflows {shown(names) or '(none)'}"


N8N = provider_register(
    ProviderSpec(
        name="n8n",
        order=30,
        settings=("base_url", "webhook_prefix", "api_prefix"),
        secrets=("api_key", "webhook_secret"),
        required_settings=("base_url",),
        required_secrets=("api_key",),
        setup="In n8n: add an HTTP Request node posting to the URL below, signed with the "
        "webhook secret.",
        url_settings=("base_url",),
        # n8n results name no external id: the URL's connection and its secret identify them.
        external_id="base_url",
        check_config=_check_config,
        probe=_probe,
        webhook="integrations.webhooks.n8n_webhook",
    )
)
