from integrations.whatsapp.versions import DEFAULT_GRAPH_VERSION, SUPPORTED_GRAPH_VERSIONS

from .env import env_choice

# The Graph API version of every WhatsApp Cloud API call (sends and connection tests); one of
# the versions the client supports, else start-up stops naming it.
WHATSAPP_GRAPH_API_VERSION = env_choice(
    "WHATSAPP_GRAPH_API_VERSION", DEFAULT_GRAPH_VERSION, choices=tuple(SUPPORTED_GRAPH_VERSIONS)
)
