"""Demo data for the local stack: an operator and three tenants with stable API keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from tenants.models import ApiKey, Tenant
from tenants.provisioning import tenant_provision
from tenants.scope import dangerously_unscoped
from tenants.scopes import TENANT_OWNER_SCOPES, scopes_validate
from tenants.services import API_KEY_PREFIX, hash_api_key

DEMO_TENANTS = [
    ("acme", "Acme Corporation", Tenant.Plan.PRO),
    ("globex", "Globex Corporation", Tenant.Plan.FREE),
    ("initech", "Initech", Tenant.Plan.ENTERPRISE),
]
DEMO_OPERATOR = ("operator", "smarteros-demo")
DEMO_KEY_NAME = "demo"


@dataclass(frozen=True)
class DemoData:
    operator_username: str
    operator_password: str
    api_keys: dict[str, str]


def demo_api_key(slug: str) -> str:
    # Derived from SECRET_KEY so every run of seed_demo yields the same key without storing it.
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-api-key:{slug}".encode(), hashlib.sha256)
    return API_KEY_PREFIX + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def demo_seed() -> DemoData:
    """Create or repair the demo operator, tenants and keys, and provision the tenants like any
    other (their topics, their Vault key), so they work from the first start; safe to run any
    number of times."""
    with dangerously_unscoped():
        data = _seed()
        tenants = list(
            Tenant.objects.filter(slug__in=[slug for slug, _, _ in DEMO_TENANTS]).exclude(
                status=Tenant.Status.DELETED
            )
        )
    for tenant in tenants:
        tenant_provision(tenant=tenant)
    return data


def _seed() -> DemoData:
    username, password = DEMO_OPERATOR
    user_model = get_user_model()
    operator, _ = user_model.objects.get_or_create(username=username)
    operator.is_staff = True
    operator.is_superuser = True
    operator.email = "operator@example.com"
    operator.set_password(password)
    operator.save()

    keys: dict[str, str] = {}
    for slug, name, plan in DEMO_TENANTS:
        tenant, _ = Tenant.objects.get_or_create(
            # Provisioning (demo_seed) makes it active once its topics and key exist.
            slug=slug,
            defaults={"name": name, "plan": plan, "status": Tenant.Status.PROVISIONING},
        )
        secret = demo_api_key(slug)
        ApiKey.objects.update_or_create(
            key_hash=hash_api_key(secret),
            defaults={
                "tenant": tenant,
                "name": DEMO_KEY_NAME,
                "prefix": secret[: len(API_KEY_PREFIX) + 6],
                "scopes": scopes_validate(TENANT_OWNER_SCOPES, platform_allowed=False),
                "revoked_at": None,
            },
        )
        keys[slug] = secret
    return DemoData(operator_username=username, operator_password=password, api_keys=keys)
