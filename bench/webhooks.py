"""Webhook ingest against a bare view, measured in one run under one ASGI server.

(a) `POST /bare/hook/`: a plain Django view in SmarterOS's own ASGI app that only reads the body
(b) `POST /hooks/shopify/bench/`: signed Shopify orders/create deliveries, each with its own
    webhook id, through every check (rate limit, size, connection, payload, shop, HMAC) and
    accepted: a delivery row and its outbox event committed in one transaction

Both get the same bodies and headers, from --clients concurrent clients, in alternating rounds
of --seconds each (so drift hits both alike); the medians of the rounds' rates are printed, and
last `ratio: R` = (b)/(a) (target >= 0.5).

The server runs as `make run` runs the web tier: a connection pool per login (DATABASE_POOL) of
DATABASE_POOL_MAX_SIZE connections (the settings' default unless --pool N; 0 = no pool, a new
PostgreSQL connection per request and login). A request holds its connection until it answers,
so a pool smaller than --clients makes deliveries queue for connections, not for the work.

Usage: .venv/bin/python bench/webhooks.py [--clients 16] [--seconds 3] [--rounds 3] [--pool N]
(needs the local stack: make up, or make run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The bench shop's api_base_url is on loopback: the egress gate lets it be saved (and called).
os.environ.setdefault("EGRESS_ALLOWED_NETWORKS", "127.0.0.1/32")
sys.path.insert(0, str(ROOT))

from bench.mcp_latency import bench_tenant_key  # noqa: E402
from tests.fixtures.deliveries import (  # noqa: E402
    SHOPIFY_APP_SECRET,
    shopify_headers,
    shopify_order,
)
from tests.processes import asgi_server  # noqa: E402

SHOP = "bench.myshopify.com"
CONNECT = f"""
from integrations.services import integration_connect
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
with dangerously_unscoped():
    tenant = Tenant.objects.get(slug="bench")
integration_connect(
    tenant=tenant,
    provider="shopify",
    config={{"shop_domain": "{SHOP}", "api_base_url": "http://127.0.0.1:9"}},
    credentials={{"access_token": "bench", "app_secret": "{SHOPIFY_APP_SECRET}"}},
)
"""


def _bench_shop() -> None:
    """The bench tenant (bench/mcp_latency.py's), connected to a shop whose secret we sign with."""
    bench_tenant_key()
    subprocess.run([sys.executable, "manage.py", "shell", "-c", CONNECT], cwd=ROOT, check=True)


def _delivery() -> tuple[bytes, dict[str, str]]:
    body = json.dumps(shopify_order(order_id=uuid.uuid4().int % 10**15)).encode()
    headers = shopify_headers(body, shop_domain=SHOP, webhook_id=str(uuid.uuid4()))
    headers["Content-Type"] = "application/json"
    return body, headers


async def _rate(url: str, clients: int, seconds: float, *, accepted: bool) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                body, headers = _delivery()
                response = await client.post(url, content=body, headers=headers)
                if response.status_code != 200 or (
                    accepted and response.json().get("accepted") is not True
                ):
                    raise SystemExit(f"{url} answered {response.status_code}: {response.text}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pool",
        type=int,
        default=None,
        help="pooled connections per login (0: no pool; default: DATABASE_POOL_MAX_SIZE's)",
    )
    args = parser.parse_args()
    if args.pool is None:
        from smarteros.settings.database import DATABASE_POOL_MAX_SIZE

        args.pool = DATABASE_POOL_MAX_SIZE

    _bench_shop()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_CONN_MAX_AGE": "0",
        "DATABASE_POOL": "true" if args.pool else "false",
        "DATABASE_POOL_MIN_SIZE": str(min(2, args.pool)),
        "DATABASE_POOL_MAX_SIZE": str(max(1, args.pool)),
    }
    server = asgi_server(
        "bench.bare_http:application",
        env=env,
        args=("--no-access-log", "--log-level", "warning"),
    )
    app = server.url
    try:
        targets = {"bare": f"{app}/bare/hook/", "shopify": f"{app}/hooks/shopify/bench/"}
        print(
            f"webhook ingest: {args.clients} concurrent clients, {args.rounds} alternating "
            f"rounds of {args.seconds:.0f}s per side, one uvicorn worker, "
            + (f"connection pool of {args.pool} per login" if args.pool else "no connection pool"),
            flush=True,
        )
        for label, url in targets.items():  # warm-up: connections, caches, the secret
            asyncio.run(_rate(url, args.clients, 1.0, accepted=label == "shopify"))
        rates: dict[str, list[float]] = {label: [] for label in targets}
        for _ in range(args.rounds):
            for label, url in targets.items():
                rate = asyncio.run(
                    _rate(url, args.clients, args.seconds, accepted=label == "shopify")
                )
                rates[label].append(rate)
    finally:
        server.stop()

    bare = statistics.median(rates["bare"])
    ours = statistics.median(rates["shopify"])
    print(f"bare view (reads the body): {bare:.0f} req/s", flush=True)
    print(f"/hooks/shopify/ (checked, signed, stored): {ours:.0f} req/s", flush=True)
    print(f"ratio: {ours / bare:.2f}")


if __name__ == "__main__":
    main()
