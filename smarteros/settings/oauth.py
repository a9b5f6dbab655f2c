"""OAuth 2.1 for remote MCP clients (django-oauth-toolkit; see docs/mcp-oauth.md)."""

from .env import env_int

OAUTH_ACCESS_TOKEN_SECONDS = env_int("OAUTH_ACCESS_TOKEN_SECONDS", 3600, minimum=60)
OAUTH_REFRESH_TOKEN_SECONDS = env_int("OAUTH_REFRESH_TOKEN_SECONDS", 30 * 86400, minimum=3600)
# Dynamic client registrations accepted per source address and hour.
OAUTH_REGISTRATIONS_PER_HOUR = env_int("OAUTH_REGISTRATIONS_PER_HOUR", 20, minimum=1)

OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    # S256 only: "plain" is refused when the code is issued (RFC 9700 2.1.1).
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH_REFRESH_TOKEN_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 120,
    "ROTATE_REFRESH_TOKEN": True,
    # A spent refresh token presented again revokes its whole family (OAuth 2.1 for public
    # clients: a stolen copy and the client cannot both go on).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "OAUTH2_VALIDATOR_CLASS": "mcp_tools.oauth.validator.GrantValidator",
    "SCOPES_BACKEND_CLASS": "mcp_tools.oauth.scopes.RegistryScopes",
}

# The toolkit's own models (its models are swappable; migrations that reference them read these).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
