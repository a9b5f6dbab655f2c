"""Tenant reads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from tenants.models import Tenant


def tenants_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tenant]:
    """Platform admins see every tenant; other operators only those they are members of."""
    if not user.is_authenticated:
        return Tenant.objects.none()
    if getattr(user, "is_superuser", False):
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user_id=user.pk)
