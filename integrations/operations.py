"""Discovery entry point: the registry imports each provider's operations from here."""

from integrations.n8n import operations as n8n_operations
from integrations.shopify import operations as shopify_operations
from integrations.whatsapp import operations as whatsapp_operations
from integrations.whatsapp import templates as whatsapp_templates

__all__ = ["n8n_operations", "shopify_operations", "whatsapp_operations", "whatsapp_templates"]
