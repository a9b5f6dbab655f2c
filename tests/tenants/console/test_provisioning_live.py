"""Provisioning from the console: steps arrive live over the websocket (real Channels layer on
Redis, real Kafka and Vault), a failed step is retried, the first key is shown once, and a
member of another tenant cannot listen in."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter

from smarteros.routing import websocket_urlpatterns
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db


class WebsocketCommunicator(ApplicationCommunicator):  # type: ignore[misc]
    """A websocket client speaking ASGI to the app, as Channels' own (whose package pulls in
    daphne, which this project does not use)."""

    def __init__(self, application: Any, path: str, user: Any) -> None:
        super().__init__(
            application,
            {"type": "websocket", "path": path, "headers": [], "subprotocols": [], "user": user},
        )

    async def connect(self, timeout: float = 10) -> tuple[bool, Any]:
        await self.send_input({"type": "websocket.connect"})
        answer = await self.receive_output(timeout)
        if answer["type"] == "websocket.close":
            return False, answer.get("code", 1000)
        return True, answer.get("subprotocol")

    async def receive_json_from(self, timeout: float = 10) -> Any:
        answer = await self.receive_output(timeout)
        assert answer["type"] == "websocket.send", answer
        return json.loads(answer["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 10) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


def socket(user: Any, slug: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/tenants/{slug}/provisioning/", user
    )


async def _events_until_finished(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    events = []
    while True:
        event = await communicator.receive_json_from(timeout=60)
        events.append(event)
        if "finished" in event:
            return events


def run_provisioning(tenant_id: int) -> threading.Thread:
    from tenants.console.progress import console_provision

    def work() -> None:
        from django.db import connections

        try:
            console_provision(tenant_id=tenant_id, actor="user:platform")
        finally:
            connections.close_all()

    # As the worker runs it, beside the socket.
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_globex_member_cannot_open_acmes_socket(world: World) -> None:
    async def attempt(user: Any, slug: str) -> tuple[bool, Any]:
        communicator = socket(user, slug)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(attempt)(world.users["globex"], world.acme.slug) == (False, 4403)
    assert async_to_sync(attempt)(world.users["globex"], "nosuchtenant") == (False, 4403)
    connected, _ = async_to_sync(attempt)(world.users["viewer"], world.acme.slug)
    assert connected


def test_steps_arrive_live_a_failed_step_is_retried_and_the_first_key_shown_once(
    world: World, settings: Any
) -> None:
    from smarteros.celery import app

    # The create view queues the provisioning task; here the test runs it itself, beside the
    # socket, so the queued one must neither run in-process (eager mode) nor linger after.
    app.conf.task_always_eager = False
    platform = world.client("platform")
    slug = f"live{secrets.token_hex(4)}"
    created = platform.post("/tenants/new/", {"slug": slug, "name": "Live", "plan": "pro"})
    app.control.purge()
    assert created.status_code == 302 and created["Location"] == f"/tenants/{slug}/provisioning/"
    with dangerously_unscoped():
        tenant = Tenant.objects.get(slug=slug)

    settings.VAULT_ADDR = "http://127.0.0.1:1"  # Vault unreachable: the second step fails

    async def watch_failure() -> list[dict[str, Any]]:
        communicator = socket(world.users["platform"], slug)
        assert (await communicator.connect())[0]
        snapshot = await communicator.receive_json_from(timeout=10)
        assert [s["step"] for s in snapshot["snapshot"]] == [
            "kafka_topics",
            "vault_key",
            "first_api_key",
        ]
        thread = run_provisioning(tenant.pk)
        events = await _events_until_finished(communicator)
        thread.join(60)
        await communicator.disconnect()
        return events

    events = async_to_sync(watch_failure)()
    steps = [(e["step"], e["state"]) for e in events if "step" in e]
    assert steps == [
        ("kafka_topics", "running"),
        ("kafka_topics", "done"),
        ("vault_key", "running"),
        ("vault_key", "failed"),
    ]
    assert events[-1]["finished"] == "failed" and "vault_key" in events[-1]["detail"]
    page = platform.get(f"/tenants/{slug}/provisioning/").content.decode()
    assert 'class="step-failed"' in page and "Vault is unavailable" in page
    assert 'id="retry-form" hidden' not in page

    settings.VAULT_ADDR = "http://127.0.0.1:8200"

    async def watch_retry() -> list[dict[str, Any]]:
        communicator = socket(world.users["platform"], slug)
        assert (await communicator.connect())[0]
        snapshot = await communicator.receive_json_from(timeout=10)
        assert {s["step"]: s["state"] for s in snapshot["snapshot"]}["vault_key"] == "failed"
        thread = run_provisioning(tenant.pk)
        events = await _events_until_finished(communicator)
        thread.join(60)
        await communicator.disconnect()
        return events

    events = async_to_sync(watch_retry)()
    assert [(e["step"], e["state"]) for e in events if e.get("state") == "done"] == [
        ("kafka_topics", "done"),
        ("vault_key", "done"),
        ("first_api_key", "done"),
    ]
    assert events[-1] == {"finished": "done", "first_key": True, "status": "active"}
    with dangerously_unscoped():
        assert Tenant.objects.get(pk=tenant.pk).status == "active"

    # A page that connects (or reconnects) after the end still offers the key, to platform
    # admins only.
    async def snapshot_offers_key(user: Any) -> bool:
        communicator = socket(user, slug)
        assert (await communicator.connect())[0]
        snapshot = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return bool(snapshot["first_key"])

    assert async_to_sync(snapshot_offers_key)(world.users["platform"]) is True
    with dangerously_unscoped():
        from tenants.models import Membership

        Membership.objects.create(user=world.users["viewer"], tenant=tenant, role="viewer")
    assert async_to_sync(snapshot_offers_key)(world.users["viewer"]) is False

    # Only a platform admin takes the key, and only once.
    assert (
        world.client("globex").post(f"/tenants/{slug}/provisioning/first-key/").status_code == 403
    )
    shown = platform.post(f"/tenants/{slug}/provisioning/first-key/").content.decode()
    assert (
        'id="first-key-secret">sos_live_' in shown
        and "&quot;SMARTEROS_API_KEY&quot;: &quot;sos_live_" in shown
    )
    again = platform.post(f"/tenants/{slug}/provisioning/first-key/").content.decode()
    assert "sos_live_" not in again and "already shown" in again
    assert async_to_sync(snapshot_offers_key)(world.users["platform"]) is False
