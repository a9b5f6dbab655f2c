"""OAuth 2.1 for /mcp, as the MCP authorization spec describes (docs/mcp-oauth.md).

SmarterOS is both the protected resource (/mcp, RFC 9728 metadata) and the authorization server
(RFC 8414 metadata, authorization code with PKCE S256, refresh, revocation, RFC 7591 dynamic
registration of public clients), on django-oauth-toolkit. Tokens are audience-bound (RFC 8707) to
this server's /mcp URL and accepted nowhere else.
"""
