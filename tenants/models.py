from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from tenants import roles

# Slugs become Kafka topic prefixes ("{slug}.{topic}") and Vault key names, so they are limited
# to characters legal in both, and short enough that every catalog topic stays under 249 chars.
SLUG_RE = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
slug_validator = RegexValidator(
    SLUG_RE,
    "A tenant slug is 3-40 characters: lowercase letters, digits and hyphens, "
    "starting with a letter and not ending with a hyphen.",
)


class Tenant(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROVISIONING = "provisioning"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        DELETED = "deleted"

    class Plan(models.TextChoices):
        FREE = "free"
        PRO = "pro"
        ENTERPRISE = "enterprise"

    slug = models.CharField(
        max_length=40,
        unique=True,
        validators=[slug_validator],
        help_text="Names the tenant's topics, Vault key and webhook URLs: it cannot change once "
        "provisioning has started.",
    )
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty means the platform default."
    )
    llm_tokens_per_day = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="LLM tokens (input + output) this tenant may spend per UTC day; empty means "
        "its plan's budget (LLM_TOKENS_PER_DAY_BY_PLAN), 0 means no budget.",
    )
    contact_email = models.EmailField(blank=True)
    mask_personal_data = models.BooleanField(
        default=True,
        help_text="Mask e-mail addresses and phone numbers in the topic viewer and its exports. "
        "Credentials, card numbers and national ids are masked whatever this says.",
    )
    deleted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When deletion was requested; resources go after the grace period.",
    )
    status_before_deletion = models.CharField(
        max_length=20,
        choices=Status.choices,
        blank=True,
        editable=False,
        help_text="While a deletion is pending: the status it interrupted, which cancelling "
        "restores (tenants.lifecycle).",
    )
    deprovisioned_at = models.DateTimeField(null=True, blank=True)
    vault_namespace = models.CharField(  # noqa: DJ001 (null: not recorded; "": none)
        max_length=200,
        null=True,
        blank=True,
        editable=False,
        help_text="The tenant's Vault namespace, recorded at provisioning; empty means none "
        "(the server has no namespaces); null means not yet provisioned.",
    )
    provisioning_error = models.CharField(
        max_length=500, blank=True, help_text="The step that failed last, and why."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A person's role within one tenant (what each may do: tenants.roles). Platform admins
    (superusers) need none."""

    class Role(models.TextChoices):
        # Least to most: the order the console offers them in.
        VIEWER = roles.VIEWER, "Tenant viewer"
        OPERATOR = roles.OPERATOR, "Tenant operator"
        ADMIN = roles.ADMIN, "Tenant admin"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class ApiKey(models.Model):
    """A tenant API key. Only a SHA-256 hash of the secret is stored; it is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=24, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(
        default=list,
        help_text='Permissions or operation names this key may call; "*" means the ordinary '
        "permissions (not agent.admin, tenant.admin or platform.admin).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="After this the key is refused; empty: it never expires."
    )

    class Meta:
        ordering = ["tenant", "created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= timezone.now()


class AuditEvent(models.Model):
    """Who changed what: every write by an API key (through the executor) or a person (admin)."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, help_text="user:<username> or key:<prefix>")
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}"
