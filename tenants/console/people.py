"""People page: who has which role in a tenant; tenant admins invite, change roles and remove.

The invited person's one-time link is shown once, on a page that is never cached; opening it
lets them choose a password, after which the link no longer works.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from smarteros.parsing import INT64_MAX, InvalidValue, parse_int
from tenants.console.access import TenantAccess, actor_of, tenant_for
from tenants.models import Membership
from tenants.people import member_invite, member_remove, member_role_set, members_list
from tenants.roles import Capability
from tenants.scope import dangerously_unscoped


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


def _render(
    request: HttpRequest, access: TenantAccess, form: InviteForm, status: int = 200, **extra: Any
) -> HttpResponse:
    context = {
        "access": access,
        "tenant": access.tenant,
        "tab": "people",
        "members": members_list(tenant=access.tenant),
        "roles": Membership.Role.choices,
        "form": form,
        **extra,
    }
    return render(request, "console/people.html", context, status=status)


def _member_id(raw: str | None) -> int:
    try:
        return parse_int(raw, field="member", minimum=1, maximum=INT64_MAX)
    except InvalidValue as exc:
        raise ValidationError({"member": str(exc)}) from None


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def people(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":
        return _render(request, tenant_for(request, slug), InviteForm())
    action = request.POST.get("action", "invite")
    # Audited, refused or not: only a name this page knows goes into the record.
    known = action if action in ("invite", "role", "remove") else "unknown"
    access = tenant_for(request, slug, action=f"member.{known}", need=Capability.PEOPLE)
    actor = actor_of(request)
    form = InviteForm(request.POST if action == "invite" else None)
    try:
        if action == "invite":
            if not form.is_valid():
                return _render(request, access, form, status=400)
            invitation = member_invite(
                tenant=access.tenant,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=actor,
            )
            link = request.build_absolute_uri(invitation.link) if invitation.link else None
            return _render(request, access, InviteForm(), invited=invitation, link=link)
        user_id = _member_id(request.POST.get("member"))
        if action == "role":
            member_role_set(
                tenant=access.tenant,
                user_id=user_id,
                role=request.POST.get("role", "")[:40],
                actor=actor,
            )
        elif action == "remove":
            if request.POST.get("confirm") != "yes":
                chosen = [m for m in members_list(tenant=access.tenant) if m.user_id == user_id]
                if not chosen:
                    raise ValidationError({"member": "no such member"})
                return _render(request, access, form, confirm_remove=chosen[0])
            member_remove(tenant=access.tenant, user_id=user_id, actor=actor)
        else:
            raise ValidationError({"action": "unknown action"})
    except ValidationError as exc:
        problems = [m for messages in exc.message_dict.values() for m in messages]
        return _render(request, access, form, status=400, problems=problems)
    return redirect("console-people", slug=slug)


@never_cache
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, uid: str, token: str) -> HttpResponse:
    """An invited person chooses a password; the link then stops working."""
    User = get_user_model()
    try:
        pk = parse_int(
            force_str(urlsafe_base64_decode(uid)), field="uid", minimum=1, maximum=INT64_MAX
        )
    except ValueError:  # not base64, not UTF-8, or not a key (InvalidValue)
        pk = 0
    with dangerously_unscoped():
        user = User.objects.filter(pk=pk).first() if pk else None
    if user is None or not default_token_generator.check_token(user, token):
        return render(
            request,
            "403.html",
            {"exception": "This invitation link was used already or is not valid."},
            status=404,
        )
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with dangerously_unscoped():
            form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("console-tenants")
    return render(request, "console/invite_accept.html", {"form": form, "invitee": user})
