from .env import env_choice, env_str, env_url
from .profile import local_default

VAULT_ADDR = env_url("VAULT_ADDR", "http://127.0.0.1:8200", schemes=("http", "https"))
VAULT_TOKEN = env_str("VAULT_TOKEN", local_default("smarteros-dev-root"))
VAULT_TRANSIT_MOUNT = env_str("VAULT_TRANSIT_MOUNT", "transit")
# Empty means the root namespace; OpenBao and Vault Enterprise support namespaces.
VAULT_NAMESPACE = env_str("VAULT_NAMESPACE", "")
# A Vault namespace per tenant: "auto" where the server supports them (OpenBao, Vault
# Enterprise), "on" to require them, "off" to keep every tenant's key in VAULT_NAMESPACE.
VAULT_TENANT_NAMESPACES = env_choice(
    "VAULT_TENANT_NAMESPACES", "auto", choices=("auto", "on", "off")
)
