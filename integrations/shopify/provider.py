"""Shopify as a provider: settings, secrets, the shop domain deliveries name, checks, probe and
webhook."""

from __future__ import annotations

import re
from typing import Any

from integrations.providers import Config, ProviderSpec, provider_register


def _check_config(config: Config) -> Config:
    from integrations.shopify.versions import api_version_check

    if config.get("api_version") not in (None, ""):
        config["api_version"] = api_version_check(config["api_version"])
    return config


def _probe(config: Config, credentials: Any) -> str:
    from integrations.probe import shown
    from integrations.shopify.client import SHOP_QUERY
    from integrations.shopify.effects import shopify_client_of

    shop = shopify_client_of(config, credentials).graphql(SHOP_QUERY)["shop"]
    return f"Shopify: shop {shown(shop['name'])!r} ({shown(shop['myshopifyDomain'])})"


SHOPIFY = provider_register(
    ProviderSpec(
        name="shopify",
        order=10,
        settings=("shop_domain", "api_version", "api_base_url"),
        secrets=("access_token", "app_secret"),
        required_settings=("shop_domain",),
        required_secrets=("access_token",),
        setup="In the Shopify admin: Settings → Notifications → Webhooks, add the URL below "
        "(JSON) for the topics you need; the app secret signs them.",
        url_settings=("api_base_url",),
        external_id="shop_domain",
        external_id_pattern=re.compile(r"^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$"),
        external_id_lower=True,
        check_config=_check_config,
        probe=_probe,
        webhook="integrations.webhooks.shopify_webhook",
    )
)
