"""The soak itself, once its services run: tenants and their integrations (at the loopback SaaS
stand-in), the application processes, traffic and faults, the drain, and the report."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")
os.environ.setdefault("EGRESS_ALLOWED_NETWORKS", "127.0.0.1/32")  # the SaaS stand-ins

import django

django.setup()
logging.getLogger("httpx").setLevel(logging.WARNING)

import soak_checks  # noqa: E402
import soak_faults  # noqa: E402
import soak_stack  # noqa: E402
import soak_traffic  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from integrations.models import N8nTrigger  # noqa: E402
from integrations.services import integration_connect  # noqa: E402
from smarteros.events.catalog import tenant_topics  # noqa: E402
from smarteros.events.subscriptions import subscriptions_changed, subscriptions_wait  # noqa: E402
from smarteros.events.topics import topics_sync  # noqa: E402
from tenants.demo import demo_seed  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.scope import dangerously_unscoped, tenant_scope  # noqa: E402
from tests.fixtures import deliveries  # noqa: E402
from tests.fixtures.saas import LLM_KEY, N8N_KEY, SHOPIFY_TOKEN, WHATSAPP_TOKEN, SaasServer  # noqa: E402


def tenants_prepare(saas_url: str) -> tuple[list[soak_traffic.TenantTraffic], str]:
    """The three demo tenants, each connected to Shopify, WhatsApp (with a bot) and n8n at the
    stand-in, with an n8n workflow subscribed to its Shopify webhooks; an operator session."""
    data = demo_seed()
    prepared = []
    for index, (slug, key) in enumerate(sorted(data.api_keys.items())):
        with dangerously_unscoped():
            tenant = Tenant.objects.get(slug=slug)
        phone_number_id = f"1065403522{index:05d}"
        topics_sync(tenant_topics(slug))
        with tenant_scope(tenant.pk):
            integration_connect(
                tenant=tenant,
                provider="shopify",
                config={"shop_domain": f"{slug}.myshopify.com", "api_base_url": saas_url},
                credentials={
                    "access_token": SHOPIFY_TOKEN,
                    "app_secret": deliveries.SHOPIFY_APP_SECRET,
                },
            )
            integration_connect(
                tenant=tenant,
                provider="whatsapp",
                config={
                    "phone_number_id": phone_number_id,
                    "api_base_url": saas_url,
                    "llm_base_url": saas_url,
                    "llm_model": "claude-test",
                },
                credentials={
                    "access_token": WHATSAPP_TOKEN,
                    "llm_api_key": LLM_KEY,
                    "app_secret": deliveries.META_APP_SECRET,
                },
            )
            integration_connect(
                tenant=tenant,
                provider="n8n",
                config={"base_url": saas_url},
                credentials={"api_key": N8N_KEY, "webhook_secret": deliveries.N8N_WEBHOOK_SECRET},
            )
            N8nTrigger.objects.create(
                tenant=tenant, topic="shopify.webhooks", webhook_path=f"soak-{slug}"
            )
        prepared.append(soak_traffic.TenantTraffic(slug, key, phone_number_id))
    # The forwarding group reads only topics with a trigger: wait until it reads these.
    subscriptions_wait(subscriptions_changed(), timeout=60)
    operator = get_user_model().objects.get(username=data.operator_username)
    session = SessionStore()
    session["_auth_user_id"] = str(operator.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = operator.get_session_auth_hash()
    session.create()
    return prepared, str(session.session_key)


class MemoryWatch:
    """Samples every process's resident memory (with its children) once a second; keeps peaks."""

    def __init__(self, stack: soak_stack.Stack, surfaces: soak_traffic.Surfaces) -> None:
        self.stack, self.surfaces = stack, surfaces
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            pids = dict(self.stack.pids())
            for slug, peer in list(self.surfaces.stdio.items()):
                pids[f"mcp_stdio:{slug}"] = peer.process.pid
            for name, pid in pids.items():
                self.peaks[name] = max(self.peaks.get(name, 0), soak_stack.rss_kb(pid))


def soak(stack: soak_stack.Stack, *, seconds: float, rate: float, drain: float) -> int:
    saas = SaasServer().__enter__()
    try:
        tenants, session = tenants_prepare(saas.url)
        stack.start_apps()
        soak_stack.say("stack up; waiting for /readyz")
        try:
            soak_stack.wait(soak_stack.http_answers(f"{stack.web_url}/readyz"), 60, "readyz")
        except RuntimeError as exc:
            soak_stack.say(f"{exc}; going on (the report will show what failed)")
        return _traffic_and_faults(stack, saas, tenants, session, seconds, rate, drain)
    finally:
        saas.__exit__()


def _traffic_and_faults(
    stack: soak_stack.Stack,
    saas: Any,
    tenants: list[soak_traffic.TenantTraffic],
    session: str,
    seconds: float,
    rate: float,
    drain: float,
) -> int:
    surfaces = soak_traffic.Surfaces(stack.web_url, tenants, session)
    env = dict(os.environ)
    actions = []
    for tenant in tenants:
        actions += [
            lambda t=tenant: surfaces.mcp_http(t),
            lambda t=tenant: surfaces.mcp_stdio(t, env),
            lambda t=tenant: surfaces.rest(t),
            lambda t=tenant: surfaces.hook_shopify(t),
            lambda t=tenant: surfaces.hook_whatsapp(t),
            lambda t=tenant: surfaces.hook_n8n(t),
            lambda t=tenant: surfaces.console(t),
        ]
    reader = soak_traffic.SocketReader(
        stack.web_url.replace("http", "ws") + "/ws/topics/",
        session,
        f"{tenants[0].slug}.shopify.webhooks",
        surfaces.recorder,
    )
    stack.own_processes = surfaces.stdio_held
    memory = MemoryWatch(stack, surfaces)
    stop = threading.Event()
    faults = soak_faults.fault_schedule(stack)
    threads = [
        threading.Thread(target=soak_traffic.drive, args=(actions, rate, stop), daemon=True),
        threading.Thread(target=reader.run, daemon=True),
    ]
    fault_thread = threading.Thread(
        target=soak_faults.run_faults, args=(faults, seconds, stop), daemon=True
    )
    began = time.monotonic()
    soak_stack.say(f"traffic at {rate:g}/s for {seconds:g}s with {len(faults)} faults")
    for thread in (*threads, fault_thread):
        thread.start()
    time.sleep(seconds)
    fault_thread.join()  # a fault still recovering finishes under traffic
    stop.set()
    reader.stop.set()
    for thread in threads:
        thread.join(soak_traffic.HANG_SECONDS + 10)
    traffic_seconds = time.monotonic() - began
    surfaces.close()
    soak_stack.say("traffic stopped; draining")
    drained = soak_checks.drain(sum(surfaces.recorder.calls.values()), drain)
    memory.stop.set()
    report = soak_checks.Report(
        recorder=surfaces.recorder,
        faults=faults,
        saas=saas,
        tenants=[t.slug for t in tenants],
        peaks=memory.peaks,
        socket_messages=reader.messages,
        socket_connects=reader.connects,
        traffic_seconds=traffic_seconds,
        drained_in=drained,
    )
    return report.print()
