"""Tenant operations: create, read, update, provision, metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from pydantic import Field

from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import Email, Empty, Input, Output, ShortText, TenantSlug
from smarteros.errors import Conflict, InvalidInput, OperationError, PermissionDenied
from tenants.audit import audit_refusal
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
from tenants.scopes import PLATFORM_SCOPE
from tenants.selectors import tenant_get

PlanName = Literal["free", "pro", "enterprise"]
# Limits the platform sells and enforces: a tenant's own key cannot change them.
PLATFORM_FIELDS = frozenset({"plan", "rate_limit_per_minute"})
# The highest per-minute limit the platform sells, for every surface that sets one.
RATE_LIMIT_MAX = 1_000_000


class TenantOut(Output):
    slug: str = Field(description="Tenant slug.")
    name: str = Field(description="Display name.")
    status: Literal["pending", "provisioning", "active", "suspended", "deleted"] = Field(
        description="Lifecycle state."
    )
    plan: PlanName = Field(description="Billing plan.")
    contact_email: str = Field(description="Contact address; empty if none.")
    rate_limit_per_minute: int = Field(description="Requests per minute allowed for this tenant.")
    provisioning_error: str = Field(
        description="Why the last provisioning step failed; empty if none."
    )
    created_at: datetime = Field(description="When the tenant was created (UTC).")

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        from django.conf import settings

        return cls.model_validate(
            {
                "slug": tenant.slug,
                "name": tenant.name,
                "status": tenant.status,
                "plan": tenant.plan,
                "contact_email": tenant.contact_email,
                "rate_limit_per_minute": tenant.rate_limit_per_minute
                or settings.RATE_LIMIT_PER_MINUTE,
                "provisioning_error": tenant.provisioning_error,
                "created_at": tenant.created_at,
            }
        )


class CreateTenantIn(Input):
    slug: TenantSlug
    name: ShortText = Field(description="Display name of the shop, 1-200 characters.")
    plan: PlanName = Field("free", description="Billing plan.")
    contact_email: Email | None = Field(None, description="Contact address for the shop.")


@operation(
    service="tenant",
    title="Create tenant",
    permission="platform.admin",
    platform=True,
)
def create_tenant(ctx: OperationContext, params: CreateTenantIn) -> TenantOut:
    """Create a new tenant (shop) in 'pending' state. Platform administrators only. Run
    tenant_provision_resources for it afterwards to create its topics, keys and first API key."""
    from tenants.services import tenant_create, validation_message

    with dangerously_unscoped():
        if Tenant.objects.filter(slug=params.slug).exists():
            raise Conflict(f"slug: a tenant with slug {params.slug!r} already exists")
        try:
            tenant = tenant_create(
                slug=params.slug,
                name=params.name,
                plan=params.plan,
                contact_email=params.contact_email or "",
            )
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc)) from None
        except IntegrityError:
            raise Conflict(f"slug: a tenant with slug {params.slug!r} already exists") from None
    return TenantOut.of(tenant)


@operation(service="tenant", title="Get tenant", permission="tenant.read", read_only=True)
def get_tenant(ctx: OperationContext, params: Empty) -> TenantOut:
    """Return the caller's tenant: slug, name, status, plan, contact and rate limit."""
    return TenantOut.of(tenant_get(tenant_id=ctx.tenant.pk))


class UpdateTenantIn(Input):
    at_least_one_of = ("name", "plan", "contact_email", "rate_limit_per_minute")

    # Not nullable: a field is kept by leaving it out.
    name: ShortText = Field(None, description="New display name; omit to keep.")  # type: ignore[assignment,arg-type]
    plan: PlanName = Field(None, description="New plan (platform admins only); omit to keep.")  # type: ignore[assignment,arg-type]
    contact_email: Email = Field(None, description="New contact address; omit to keep.")  # type: ignore[assignment,arg-type]
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=RATE_LIMIT_MAX)] = Field(  # type: ignore[assignment,arg-type]
        None,
        description="Per-minute request limit for this tenant (1-1000000; platform admins "
        "only); omit to keep.",
    )


@operation(
    service="tenant",
    title="Update tenant",
    permission="tenant.admin",
    idempotent=True,
)
def update_tenant(ctx: OperationContext, params: UpdateTenantIn) -> TenantOut:
    """Change the caller's tenant: name or contact email; plan and rate limit only with the
    platform.admin scope. Only the given fields change."""
    tenant = tenant_get(tenant_id=ctx.tenant.pk)
    changes = params.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput(f"give at least one of: {', '.join(UpdateTenantIn.at_least_one_of)}")
    platform_only = sorted(set(changes) & PLATFORM_FIELDS)
    if platform_only and PLATFORM_SCOPE not in ctx.principal.scopes():
        reason = (
            f"{', '.join(platform_only)}: only a platform admin may change "
            f"{' and '.join(platform_only)} (this key lacks the {PLATFORM_SCOPE} scope)"
        )
        audit_refusal(
            actor=f"key:{ctx.principal.api_key.prefix}",
            action="tenant_update_tenant",
            tenant=ctx.tenant,
            target=ctx.tenant.slug,
            reason=reason,
        )
        raise PermissionDenied(reason)
    for field_name, value in changes.items():
        setattr(tenant, field_name, value)
    tenant.full_clean()
    tenant.save(update_fields=[*changes, "updated_at"])
    return TenantOut.of(tenant)


class ProvisionStep(Output):
    step: str = Field(description="Step name.")
    outcome: str = Field(description="What the step did.")


class ProvisionOut(Output):
    tenant: TenantOut = Field(description="The tenant after provisioning.")
    steps: list[ProvisionStep] = Field(description="Each step and its outcome, in order.")
    first_api_key: str | None = Field(
        None, description="The tenant's first API key, shown only on the run that created it."
    )


@operation(
    service="tenant",
    title="Provision tenant resources",
    permission="tenant.admin",
    idempotent=True,
    emits=("tenant.provisioning.step",),
    atomic=False,  # outside steps, each recorded as it happens; a failure keeps its record
)
def provision_resources(ctx: OperationContext, params: Empty) -> ProvisionOut:
    """Create the caller's tenant resources: its Kafka topics, its Vault Transit key and its
    first API key. Safe to repeat; a run after a failure finishes the job."""
    from tenants.provisioning import ProvisioningFailed, tenant_provision

    tenant = tenant_get(tenant_id=ctx.tenant.pk)
    try:
        report = tenant_provision(tenant=tenant)
    except ProvisioningFailed as exc:
        raise OperationError(str(exc)) from None
    return ProvisionOut(
        tenant=TenantOut.of(report.tenant),
        steps=[ProvisionStep(step=s, outcome=o) for s, o in report.steps],
        first_api_key=report.first_api_key,
    )


class MetricsIn(Input):
    window_minutes: int = Field(
        60, ge=1, le=43200, description="Look-back window in minutes (1 to 43200 = 30 days)."
    )


class MetricsOut(Output):
    tenant: str = Field(description="Tenant slug.")
    window_minutes: int = Field(description="The look-back window used.")
    active_api_keys: int = Field(description="API keys not revoked.")
    agent_sessions: int = Field(description="Agent sessions created in the window.")
    upstream_servers: int = Field(description="Registered upstream MCP servers.")
    events_pending: int = Field(description="Events committed but not yet published to Kafka.")
    calls: int = Field(description="Operation calls in the window (from telemetry).")
    errors: int = Field(description="Failed operation calls in the window (from telemetry).")
    telemetry_available: bool = Field(description="False if the telemetry store could not be read.")


@operation(service="tenant", title="Tenant metrics", permission="tenant.read", read_only=True)
def get_metrics(ctx: OperationContext, params: MetricsIn) -> MetricsOut:
    """Usage figures for the caller's tenant over a window: API keys, sessions, upstream
    servers, pending events, and operation calls and errors from telemetry."""
    from tenants.selectors import tenant_metrics

    return MetricsOut.model_validate(
        tenant_metrics(tenant=ctx.tenant, window_minutes=params.window_minutes)
    )
