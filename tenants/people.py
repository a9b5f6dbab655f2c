"""People of a tenant: invite, change a role, remove. Every change is audited (who, whom, which role).

An invitation is a one-time link: a person who has no account yet gets one without a usable
password, and the link carries a token of Django's password-reset kind, which stops working as
soon as the password is set (the token covers the password hash and the last sign-in).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tenants.audit import audit_record
from tenants.models import Membership, Tenant
from tenants.scope import dangerously_unscoped

ROLES = [value for value, _ in Membership.Role.choices]


@dataclass(frozen=True)
class Member:
    user_id: int
    username: str
    email: str
    role: str
    last_login: Any
    invited: bool  # has not set a password yet


@dataclass(frozen=True)
class Invitation:
    username: str
    link: str | None  # None: the person already had an account and was only added


def members_list(*, tenant: Tenant) -> list[Member]:
    """Everyone with a role in the tenant, by name."""
    with dangerously_unscoped():
        rows = (
            Membership.objects.filter(tenant=tenant)
            .select_related("user")
            .order_by("user__username")
        )
        return [
            Member(
                user_id=m.user_id,
                username=m.user.get_username(),
                email=m.user.email,
                role=m.role,
                last_login=m.user.last_login,
                invited=not m.user.has_usable_password(),
            )
            for m in rows
        ]


def _role_checked(role: str) -> str:
    if role not in ROLES:
        raise ValidationError({"role": f"unknown role {role[:40]!r}; one of {', '.join(ROLES)}"})
    return role


def _username_checked(username: str) -> str:
    # Same normalisation as sign-in, so an invitation cannot create a look-alike of a person.
    name = unicodedata.normalize("NFKC", username).strip()
    if not name or len(name) > 150 or "\x00" in name:
        raise ValidationError({"username": "give a user name of 1 to 150 characters"})
    if not all(ch.isalnum() or ch in "@.+-_" for ch in name):
        raise ValidationError({"username": "letters, digits and @ . + - _ only"})
    return name


def invite_link(user: Any) -> str:
    """The one-time path where an invited person sets their password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("console-invite", args=[uid, default_token_generator.make_token(user)])


def member_invite(
    *, tenant: Tenant, username: str, email: str, role: str, actor: str
) -> Invitation:
    """Give `username` `role` in the tenant, creating the account (and a one-time link) if new."""
    role, username = _role_checked(role), _username_checked(username)
    User = get_user_model()
    with dangerously_unscoped(), transaction.atomic():
        user = User.objects.filter(username__iexact=username).first()
        created = user is None
        if user is None:
            user = User.objects.create_user(username=username, email=email[:254])
            user.set_unusable_password()
            user.save(update_fields=["password"])
        elif Membership.objects.filter(user=user, tenant=tenant).exists():
            raise ValidationError({"username": f"{username} is already a member of {tenant.slug}"})
        Membership.objects.create(user=user, tenant=tenant, role=role)
        audit_record(
            actor=actor,
            action="member.invite",
            tenant=tenant,
            target=f"user:{user.get_username()}",
            details={"role": role, "new_account": created},
        )
    return Invitation(user.get_username(), invite_link(user) if created else None)


def _membership(tenant: Tenant, user_id: int) -> Membership:
    membership = Membership.objects.filter(tenant=tenant, user_id=user_id).first()
    if membership is None:
        raise ValidationError({"member": f"no such member of {tenant.slug}"})
    return membership


def _keeps_an_admin(tenant: Tenant, membership: Membership) -> None:
    admins = Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN)
    if membership.role == Membership.Role.ADMIN and admins.count() == 1:
        raise ValidationError(
            {"member": f"{membership.user} is the last admin of {tenant.slug}: add another first"}
        )


def member_role_set(*, tenant: Tenant, user_id: int, role: str, actor: str) -> None:
    """Change a member's role; the last admin cannot be demoted."""
    role = _role_checked(role)
    with dangerously_unscoped(), transaction.atomic():
        membership = _membership(tenant, user_id)
        if membership.role == role:
            return
        if role != Membership.Role.ADMIN:
            _keeps_an_admin(tenant, membership)
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="member.role",
            tenant=tenant,
            target=f"user:{membership.user.get_username()}",
            details={"from": before, "to": role},
        )


def member_remove(*, tenant: Tenant, user_id: int, actor: str) -> None:
    """Take a member's role away (their account stays); the last admin cannot be removed."""
    with dangerously_unscoped(), transaction.atomic():
        membership = _membership(tenant, user_id)
        _keeps_an_admin(tenant, membership)
        membership.delete()
        audit_record(
            actor=actor,
            action="member.remove",
            tenant=tenant,
            target=f"user:{membership.user.get_username()}",
            details={"role": membership.role},
        )
