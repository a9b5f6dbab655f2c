from celery import shared_task


@shared_task(name="mcp_tools.oauth_clear_expired")
def oauth_clear_expired() -> None:
    """Daily: delete expired OAuth access and refresh tokens and grants (django-oauth-toolkit's
    `cleartokens`), across tenants, as the platform."""
    from oauth2_provider.models import clear_expired

    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        clear_expired()
