"""The provisioning page's websocket: the current state on connect, then each step as the worker
publishes it. Only people who may see the tenant are let in."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tenants.console.access import tenant_access
from tenants.console.progress import first_key_waiting, progress_group
from tenants.console.steps import step_states

REFUSED = 4403  # close code: not allowed (an application code, as 4000-4999 are)


class ProvisioningConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    group = ""

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        access = await database_sync_to_async(tenant_access)(user=self.scope.get("user"), slug=slug)
        if access is None:
            await self.close(code=REFUSED)
            return
        self.group = progress_group(access.tenant.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {
                "snapshot": [
                    {"step": s.name, "state": s.state, "detail": s.detail}
                    for s in step_states(access.tenant)
                ],
                "status": access.tenant.status,
                # Only platform admins take the first key; a reconnect must not lose the offer.
                "first_key": access.is_platform
                and await database_sync_to_async(first_key_waiting)(tenant=access.tenant),
            }
        )

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page only listens."""

    async def progress(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
