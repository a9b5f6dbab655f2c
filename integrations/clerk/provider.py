"""Clerk as a provider: it only sends webhooks (through Svix), signed with the endpoint's
secret; the instance id, when set, must be the deliveries'."""

from __future__ import annotations

import re
from typing import Any

from integrations.providers import Config, ProviderSpec, provider_register


def _check_credentials(credentials: dict[str, str]) -> None:
    from integrations.clerk.signatures import svix_secret_key

    try:
        svix_secret_key(credentials.get("signing_secret", ""))
    except ValueError as exc:
        raise ValueError(f"signing_secret: {exc} (copy it from Clerk's endpoint page)") from None


def _probe(config: Config, credentials: Any) -> str:
    from integrations.clerk.signatures import svix_secret_key
    from smarteros.errors import InvalidInput

    # SmarterOS never calls Clerk: what can be tested is the stored signing secret.
    try:
        svix_secret_key(str(credentials.get("signing_secret") or ""))
    except ValueError as exc:
        raise InvalidInput(f"signing_secret: {exc}; save the endpoint's secret again") from None
    return "Clerk: the signing secret is a valid whsec_ secret (Clerk only sends webhooks)"


CLERK = provider_register(
    ProviderSpec(
        name="clerk",
        order=40,
        settings=("instance_id",),
        secrets=("signing_secret",),
        required_secrets=("signing_secret",),
        setup="In the Clerk Dashboard: Webhooks → Add Endpoint with the URL below; paste the "
        "endpoint's signing secret (whsec_...).",
        # Optional: when set, deliveries of another instance get 403.
        external_id="instance_id",
        external_id_pattern=re.compile(r"^(ins_[A-Za-z0-9]{1,60})?$"),
        check_credentials=_check_credentials,
        probe=_probe,
        webhook="integrations.webhooks.clerk_webhook",
    )
)
