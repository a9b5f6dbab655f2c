"""Discovery entry point: the effects registry imports each provider's effects from here."""

from integrations.n8n import effects as n8n_effects
from integrations.shopify import effects as shopify_effects
from integrations.shopify import sync as shopify_sync
from integrations.whatsapp import effects as whatsapp_effects

__all__ = ["n8n_effects", "shopify_effects", "shopify_sync", "whatsapp_effects"]
