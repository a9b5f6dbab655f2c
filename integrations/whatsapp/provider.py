"""WhatsApp (Meta's Cloud API) as a provider: settings, secrets, the phone number id deliveries
name, probe and webhook."""

from __future__ import annotations

import re
from typing import Any

from integrations.providers import Config, ProviderSpec, provider_register


def _probe(config: Config, credentials: Any) -> str:
    from integrations.probe import shown
    from integrations.whatsapp.client import GRAPH_BASE_URL, WhatsAppClient

    phone = WhatsAppClient(
        phone_number_id=config["phone_number_id"],
        access_token=credentials["access_token"],
        base_url=config.get("api_base_url") or GRAPH_BASE_URL,
    ).phone_number()
    return (
        f"WhatsApp: {shown(phone.get('display_phone_number'))} "
        f"({shown(phone.get('verified_name'))}, quality {shown(phone.get('quality_rating'))})"
    )


WHATSAPP = provider_register(
    ProviderSpec(
        name="whatsapp",
        order=20,
        settings=("phone_number_id", "verify_token", "api_base_url", "llm_base_url", "llm_model"),
        secrets=("access_token", "app_secret", "llm_api_key"),
        required_settings=("phone_number_id",),
        required_secrets=("access_token",),
        setup="In the Meta developer console: WhatsApp → Configuration, set the callback URL "
        "below and the verify token, and subscribe to messages; the app secret signs deliveries.",
        url_settings=("api_base_url", "llm_base_url"),
        external_id="phone_number_id",
        external_id_pattern=re.compile(r"^[0-9]{1,30}$"),
        probe=_probe,
        webhook="integrations.webhooks.whatsapp_webhook",
    )
)
