"""The soak's traffic: every surface at a fixed rate for three tenants, each answer classified.

An answer is `accepted` (2xx, or an MCP result that is not an error), `refused` (a 503 or 429
whose body says why, or an MCP isError result that does), `unreachable` (the connection was
refused: the web process is restarting), or a failure: `5xx` (any other 5xx, or a refusal that
does not say why), `hang` (no answer within HANG_SECONDS) or `4xx` (the soak sends only valid
requests, so a client error is the server's mistake).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures import deliveries
from tests.fuzz.mcp_wire import NoAnswer, StdioWire

ROOT = Path(__file__).resolve().parent.parent
HANG_SECONDS = 20.0
FAILURES = ("5xx", "hang", "4xx")
SURFACES = (
    "mcp_http",
    "mcp_stdio",
    "rest",
    "hook_shopify",
    "hook_whatsapp",
    "hook_n8n",
    "console",
    "websocket",
)


@dataclass
class Sample:
    surface: str
    started: float
    seconds: float
    outcome: str
    detail: str = ""


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Operation calls that reached the executor, per tenant slug and surface (telemetry must
    # match), and when each started (unix time), to place a difference.
    calls: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    call_times: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, sample: Sample, *, tenant: str = "", call: bool = False) -> None:
        with self.lock:
            self.samples.append(sample)
            if call:
                surface = sample.surface.replace("_", "-")
                self.calls[(tenant, surface)] += 1
                self.call_times.append((tenant, surface, time.time() - sample.seconds))


@dataclass(frozen=True)
class TenantTraffic:
    slug: str
    api_key: str
    phone_number_id: str


def says_why(body: str) -> bool:
    """A refusal's body must name the reason (a JSON error with a message, or text)."""
    try:
        data = json.loads(body)
    except ValueError:
        return len(body.strip()) > 10
    text = json.dumps(data).lower()
    return any(word in text for word in ("unavailable", "rate", "limit", "retry", "down", "error"))


def classify_http(status: int, body: str) -> tuple[str, str]:
    if status < 300:
        return "accepted", ""
    if status in (429, 503):
        return ("refused", body[:200]) if says_why(body) else ("5xx", f"{status} {body[:200]}")
    if status >= 500:
        return "5xx", f"{status} {body[:200]}"
    return "4xx", f"{status} {body[:200]}"


def classify_mcp(reply: dict[str, Any]) -> tuple[str, str]:
    if "error" in reply:
        return "5xx", json.dumps(reply["error"])[:200]
    result = reply.get("result", {})
    if not result.get("isError"):
        return "accepted", ""
    text = " ".join(c.get("text", "") for c in result.get("content", []))
    return ("refused", text[:200]) if says_why(text) else ("5xx", text[:200])


class Surfaces:
    """One request of each kind; each call records its sample."""

    def __init__(self, web_url: str, tenants: list[TenantTraffic], session: str) -> None:
        self.web_url = web_url
        self.tenants = tenants
        self.session = session
        self.recorder = Recorder()
        self.http = httpx.Client(
            base_url=web_url,
            timeout=HANG_SECONDS,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=0),
        )
        self.stdio: dict[str, StdioPeer] = {}
        self.stdio_locks = {tenant.slug: threading.Lock() for tenant in tenants}
        self.counter = itertools.count()

    def _timed_http(
        self, surface: str, tenant: str, method: str, path: str, *, call: bool = False, **kw: Any
    ) -> None:
        began = time.monotonic()
        try:
            response = self.http.request(method, path, **kw)
            outcome, detail = classify_http(response.status_code, response.text)
            reached = call and response.status_code not in (503,)
        except httpx.TimeoutException as exc:
            outcome, detail, reached = "hang", repr(exc), False
        except httpx.TransportError as exc:
            outcome, detail, reached = "unreachable", repr(exc), False
        self.recorder.add(
            Sample(surface, began, time.monotonic() - began, outcome, detail),
            tenant=tenant,
            call=reached,
        )

    def _tool(self, n: int) -> tuple[str, dict[str, Any]]:
        if n % 2:
            return "tenant_get_tenant", {}
        return "whatsapp_send_message", {
            "to": "+14155550100",
            "text": f"soak {n}",
            "idempotency_key": uuid.uuid4().hex,
        }

    def mcp_http(self, tenant: TenantTraffic) -> None:
        n = next(self.counter)
        name, arguments = self._tool(n)
        body = {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        began = time.monotonic()
        reached = False
        try:
            response = self.http.post(
                "/mcp",
                json=body,
                headers={
                    "Authorization": f"Bearer {tenant.api_key}",
                    "Accept": "application/json, text/event-stream",
                    "MCP-Protocol-Version": "2025-06-18",
                },
            )
            if response.status_code == 200:
                outcome, detail = classify_mcp(response.json())
                reached = outcome != "refused" or "rate" in detail.lower()
            else:
                outcome, detail = classify_http(response.status_code, response.text)
        except httpx.TimeoutException as exc:
            outcome, detail = "hang", repr(exc)
        except httpx.TransportError as exc:
            outcome, detail = "unreachable", repr(exc)
        self.recorder.add(
            Sample("mcp_http", began, time.monotonic() - began, outcome, detail),
            tenant=tenant.slug,
            call=reached,
        )

    def mcp_stdio(self, tenant: TenantTraffic, env: dict[str, str]) -> None:
        with self.stdio_locks[tenant.slug]:  # one call at a time on a pipe
            self._mcp_stdio(tenant, env)

    def _mcp_stdio(self, tenant: TenantTraffic, env: dict[str, str]) -> None:
        peer = self.stdio.get(tenant.slug)
        if peer is None or not peer.alive():
            peer = self.stdio[tenant.slug] = StdioPeer(env, tenant.api_key)
        n = next(self.counter)
        name, arguments = self._tool(n)
        began = time.monotonic()
        reply = peer.call(name, arguments, HANG_SECONDS)
        if reply is None:
            outcome, detail = "hang", "no answer on stdio"
            peer.close()
            self.stdio.pop(tenant.slug, None)
        else:
            outcome, detail = classify_mcp(reply)
        self.recorder.add(
            Sample("mcp_stdio", began, time.monotonic() - began, outcome, detail),
            tenant=tenant.slug,
            call=reply is not None and "error" not in reply,
        )

    @contextlib.contextmanager
    def stdio_held(self) -> Iterator[list[int]]:
        """No stdio server started or called meanwhile; yields their pids."""
        with contextlib.ExitStack() as held:
            for lock in self.stdio_locks.values():
                held.enter_context(lock)
            yield [peer.process.pid for peer in self.stdio.values() if peer.alive()]

    def rest(self, tenant: TenantTraffic) -> None:
        n = next(self.counter)
        name, arguments = self._tool(n)
        path = "/api/v1/" + name.replace("_", "/", 1)
        headers = {"Authorization": f"Bearer {tenant.api_key}"}
        self._timed_http(
            "rest", tenant.slug, "POST", path, call=True, json=arguments, headers=headers
        )

    def hook_shopify(self, tenant: TenantTraffic) -> None:
        body = deliveries.dumps(deliveries.shopify_order(10**12 + next(self.counter)))
        headers = deliveries.shopify_headers(body, shop_domain=f"{tenant.slug}.myshopify.com")
        headers["Content-Type"] = "application/json"
        self._timed_http(
            "hook_shopify",
            tenant.slug,
            "POST",
            f"/hooks/shopify/{tenant.slug}/",
            content=body,
            headers=headers,
        )

    def hook_whatsapp(self, tenant: TenantTraffic) -> None:
        body = deliveries.dumps(deliveries.whatsapp_text(phone_number_id=tenant.phone_number_id))
        headers = {**deliveries.meta_headers(body), "Content-Type": "application/json"}
        self._timed_http(
            "hook_whatsapp",
            tenant.slug,
            "POST",
            f"/hooks/whatsapp/{tenant.slug}/",
            content=body,
            headers=headers,
        )

    def hook_n8n(self, tenant: TenantTraffic) -> None:
        body = deliveries.dumps(deliveries.n8n_result(str(next(self.counter))))
        headers = {**deliveries.n8n_headers(body), "Content-Type": "application/json"}
        self._timed_http(
            "hook_n8n",
            tenant.slug,
            "POST",
            f"/hooks/n8n/{tenant.slug}/",
            content=body,
            headers=headers,
        )

    def console(self, tenant: TenantTraffic) -> None:
        self._timed_http(
            "console",
            tenant.slug,
            "GET",
            f"/tenants/{tenant.slug}/",
            headers={"Cookie": f"sessionid={self.session}"},
        )

    def close(self) -> None:
        for peer in self.stdio.values():
            peer.close()
        self.http.close()


class StdioPeer(StdioWire):
    """`manage.py mcp_serve` over stdio, bound to one tenant's key; one call at a time. A call
    not answered in time is a hang to count, not an error; closing waits for the telemetry."""

    def __init__(self, env: dict[str, str], api_key: str) -> None:
        super().__init__(env, api_key, close_wait=30)

    def call(self, name: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        try:
            answer, _ = self.request(
                "tools/call", {"name": name, "arguments": arguments}, timeout=timeout
            )
        except NoAnswer:
            return None
        return answer


@dataclass
class SocketReader:
    """One console user watching a tenant topic live over /ws/topics/; reconnects after a drop
    (a web restart) and counts what it saw."""

    url: str
    session: str
    topic: str
    recorder: Recorder
    stop: threading.Event = field(default_factory=threading.Event)
    messages: int = 0
    connects: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        import websockets

        # The socket's own origin, port included (the viewer compares scheme, host and port).
        origin = self.url.replace("ws", "http", 1).split("/ws/", 1)[0]
        headers = {"Cookie": f"sessionid={self.session}", "Origin": origin}
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                async with websockets.connect(self.url, additional_headers=headers) as socket:
                    await socket.send(json.dumps({"action": "live", "topic": self.topic}))
                    await self._subscribed(socket, began)
                    while not self.stop.is_set():
                        try:
                            frame = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
                        except TimeoutError:
                            continue
                        if frame.get("type") == "batch":
                            self.messages += len(frame["messages"])
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.errors.append(repr(exc)[:200])
                await asyncio.sleep(0.5)

    async def _subscribed(self, socket: Any, began: float) -> None:
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), HANG_SECONDS))
            if frame.get("type") == "live":
                self.connects += 1
                self.recorder.add(Sample("websocket", began, time.monotonic() - began, "accepted"))
                return
            if frame.get("type") == "error":
                outcome = "refused" if says_why(json.dumps(frame)) else "5xx"
                self.recorder.add(
                    Sample("websocket", began, time.monotonic() - began, outcome, str(frame))
                )
                raise TimeoutError(str(frame))


def drive(
    actions: list[Callable[[], None]], rate: float, stop: threading.Event, workers: int = 24
) -> None:
    """Start `actions` in turn at `rate` per second on a pool of threads, until `stop`."""
    work: queue.Queue[Callable[[], None] | None] = queue.Queue()

    def worker() -> None:
        while (action := work.get()) is not None:
            action()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    for sent, action in enumerate(itertools.cycle(actions)):
        if stop.is_set():
            break
        time.sleep(max(0.0, began + sent / rate - time.monotonic()))
        work.put(action)
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join(HANG_SECONDS + 5)
