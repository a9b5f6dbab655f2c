"""People in the console: a tenant admin invites with a one-time link, changes roles and removes;
viewers and other tenants' admins change nothing; every change is audited with who, whom, role."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.models import AuditEvent, Membership
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db


def _member(world: World, username: str) -> Membership | None:
    with dangerously_unscoped():
        return Membership.objects.filter(tenant=world.acme, user__username=username).first()


def test_invite_change_role_and_remove_are_audited(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/people/"
    admin = world.client("admin")
    page = admin.get(url)
    assert page.status_code == 200 and "acme-viewer" in page.content.decode()
    invited = admin.post(url, {"action": "invite", "username": "newbie", "role": "viewer"})
    body = invited.content.decode()
    assert invited.status_code == 200 and 'id="invite-link"' in body
    assert "no-store" in invited["Cache-Control"]
    link = body.split('id="invite-link">')[1].split("<")[0].split("testserver", 1)[1]
    assert link not in admin.get(url).content.decode()  # shown once

    # The link works once: the person sets a password and is signed in; then it is dead.
    stranger = Client()
    assert stranger.get(link).status_code == 200
    done = stranger.post(
        link, {"new_password1": "Fresh-pass-123", "new_password2": "Fresh-pass-123"}
    )
    assert done.status_code == 302
    assert Client().get(link).status_code == 404
    assert Client().login(username="newbie", password="Fresh-pass-123")

    newbie = _member(world, "newbie")
    assert newbie is not None and newbie.role == "viewer"
    assert (
        admin.post(url, {"action": "role", "member": newbie.user_id, "role": "admin"}).status_code
        == 302
    )
    assert _member(world, "newbie").role == "admin"  # type: ignore[union-attr]
    asked = admin.post(url, {"action": "remove", "member": newbie.user_id})
    assert asked.status_code == 200 and 'id="remove-confirm"' in asked.content.decode()
    assert _member(world, "newbie") is not None
    gone = admin.post(url, {"action": "remove", "member": newbie.user_id, "confirm": "yes"})
    assert gone.status_code == 302 and _member(world, "newbie") is None

    with dangerously_unscoped():
        trail = list(
            AuditEvent.objects.filter(tenant=world.acme, target="user:newbie")
            .order_by("id")
            .values_list("actor", "action", "details")
        )
    assert trail == [
        ("user:acme-admin", "member.invite", {"role": "viewer", "new_account": True}),
        ("user:acme-admin", "member.role", {"from": "viewer", "to": "admin"}),
        ("user:acme-admin", "member.remove", {"role": "admin"}),
    ]


def test_viewers_and_other_tenants_change_nobody(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/people/"
    viewer_id = world.users["viewer"].pk
    assert "invite-form" not in world.client("viewer").get(url).content.decode()
    for who in ("viewer", "globex"):
        client = world.client(who)
        assert (
            client.post(url, {"action": "invite", "username": "x", "role": "admin"}).status_code
            == 403
        )
        refused = client.post(url, {"action": "role", "member": viewer_id, "role": "admin"})
        assert refused.status_code == 403
    assert _member(world, "acme-viewer").role == "viewer"  # type: ignore[union-attr]
    assert _member(world, "x") is None


def test_the_last_admin_stays_and_bad_input_is_a_clear_400(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/people/"
    admin = world.client("admin")
    admin_id = world.users["admin"].pk
    demote = admin.post(url, {"action": "role", "member": admin_id, "role": "viewer"})
    assert demote.status_code == 400 and "last admin" in demote.content.decode()
    for data in (
        {"action": "role", "member": "²", "role": "admin"},
        {"action": "role", "member": "9" * 5000, "role": "admin"},
        {"action": "role", "member": admin_id, "role": "owner"},
        {"action": "invite", "username": "bad\x00name", "role": "viewer"},
        {"action": "invite", "username": "acme-viewer", "role": "viewer"},
        {"action": "explode"},
    ):
        assert admin.post(url, data).status_code == 400, data
    assert _member(world, "acme-admin").role == "admin"  # type: ignore[union-attr]
    assert Client().get("/invite/MQ/not-a-token/").status_code == 404
    assert Client().get("/invite/%C2%B2/x/").status_code == 404


def test_a_refused_post_holding_nul_is_a_403_and_audited_readably(world: World) -> None:
    """Found by the console fuzzer: a viewer's refused post with a NUL in `action` was written
    into the refusal's audit record, which PostgreSQL refuses: a 500."""
    url = f"/tenants/{world.acme.slug}/people/"
    answer = world.client("viewer").post(url, {"action": "\x00", "member": "5", "role": "admin"})
    assert answer.status_code == 403
    with dangerously_unscoped():
        refused = AuditEvent.objects.filter(action="member.unknown.refused").first()
    assert refused is not None
