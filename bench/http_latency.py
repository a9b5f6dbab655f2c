"""HTTP surfaces against bare servers, measured in one run with the same client.

(a) a bare `mcp` SDK server, stateless streamable HTTP, echo tool, under uvicorn
(b) SmarterOS /mcp tools/call tenant_get_tenant
(c) a bare django-ninja endpoint reading one tenant row, in SmarterOS's own ASGI app
(d) SmarterOS REST POST /api/v1/tenant/get_tenant

For each: sequential p50/p99 (alternating rounds, so drift hits all sides alike) and requests/s
with --clients concurrent clients. Ratios: (b)/(a) and (d)/(c) for p50, the same pairs for
throughput. Last line `ratio: R` is the worse of the two p50 ratios (target <= 2.0).

Usage: .venv/bin/python bench/http_latency.py [--calls N] [--clients 32] [--seconds 5]
       [--web-workers N] [--web URL] [--bare-json]   (needs the local stack: make up, or make run)
With --web the SmarterOS side (b, d) is measured against a running server (make run);
otherwise the bench starts its own uvicorn with --web-workers processes.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mcp_latency import bench_tenant_key, percentile  # noqa: E402
from tests.processes import ServerProcess, asgi_server, free_port, http_ready  # noqa: E402

ROUND = 50
MCP_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}


@dataclass
class Target:
    label: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    check: Callable[[httpx.Response], None]


def _mcp_body(tool: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
    ).encode()


def _mcp_ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"/mcp answered {response.status_code}: {response.text[:300]}")
    text = response.text
    if text.startswith("event:") or text.startswith("data:") or "\ndata:" in text:
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    reply = json.loads(text)
    if "error" in reply or reply["result"].get("isError"):
        raise SystemExit(f"tools/call failed: {reply}")


def _json_ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{response.url} answered {response.status_code}: {response.text[:300]}")


QUIET = ("--no-access-log", "--log-level", "warning")


def _sequential(client: httpx.Client, target: Target) -> float:
    started = time.perf_counter()
    response = client.request(
        target.method, target.url, headers=target.headers, content=target.body
    )
    elapsed = (time.perf_counter() - started) * 1000
    target.check(response)
    return elapsed


async def _throughput(target: Target, clients: int, seconds: float) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.request(
                    target.method, target.url, headers=target.headers, content=target.body
                )
                target.check(response)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--web", help="measure SmarterOS at this URL (e.g. a running make run)")
    parser.add_argument(
        "--bare-json",
        action="store_true",
        help="the bare MCP server answers plain JSON (json_response=True), as our /mcp does for "
        "requests without a progress token; by default it answers with an event stream",
    )
    args = parser.parse_args()

    # The web tier's settings, as make run and compose.yml give them.
    env = {**os.environ, "DJANGO_DEBUG": "false", "PYTHONUNBUFFERED": "1", "DATABASE_POOL": "true"}
    key = bench_tenant_key()
    tenant_id = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from tenants.models import Tenant\nfrom tenants.scope import dangerously_unscoped\n"
         "with dangerously_unscoped(): print(Tenant.objects.get(slug='bench').pk)"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()[-1]  # fmt: skip

    mcp_port = free_port()
    servers = [
        ServerProcess(
            [sys.executable, str(ROOT / "bench" / "bare_http.py"), "mcp", str(mcp_port),
             *(["json"] if args.bare_json else [])],
            port=mcp_port, env=env, ready=http_ready(f"http://127.0.0.1:{mcp_port}/mcp"),
        ),
    ]  # fmt: skip
    try:
        servers.append(
            asgi_server(
                "bench.bare_http:application",
                env=env,
                args=(*QUIET, "--workers", str(args.web_workers)),
            )
        )
        bare_mcp, app = servers[0].url, servers[1].url
        ours = (args.web or app).rstrip("/")
        auth = {"authorization": f"Bearer {key}"}
        targets = [
            Target("bare-mcp", "POST", f"{bare_mcp}/mcp", MCP_HEADERS,
                   _mcp_body("echo", {"text": "hello"}), _mcp_ok),
            Target("smarteros-mcp", "POST", f"{ours}/mcp", {**MCP_HEADERS, **auth},
                   _mcp_body("tenant_get_tenant", {}), _mcp_ok),
            Target("bare-ninja", "GET", f"{app}/bare/tenant/{tenant_id}", {}, None, _json_ok),
            Target("smarteros-rest", "POST", f"{ours}/api/v1/tenant/get_tenant",
                   {"content-type": "application/json", **auth}, b"{}", _json_ok),
        ]  # fmt: skip
        print(
            f"HTTP surfaces: {args.calls} sequential calls each after {args.warmup} warm-up "
            f"calls, then {args.clients} concurrent clients for {args.seconds:.0f}s each; "
            f"SmarterOS at {ours}"
            + ("" if args.web else f" ({args.web_workers} uvicorn worker(s))")
            + f"; bare MCP answers {'JSON' if args.bare_json else 'an event stream'}",
            flush=True,
        )
        samples: dict[str, list[float]] = {t.label: [] for t in targets}
        with httpx.Client(timeout=30) as client:
            for target in targets:
                for _ in range(args.warmup):
                    _sequential(client, target)
            for _ in range(-(-args.calls // ROUND)):
                for target in targets:
                    samples[target.label] += [_sequential(client, target) for _ in range(ROUND)]
        rates = {t.label: asyncio.run(_throughput(t, args.clients, args.seconds)) for t in targets}
    finally:
        for server in servers:
            server.stop()

    p50 = {label: statistics.median(values) for label, values in samples.items()}
    for target in targets:
        values = samples[target.label]
        print(
            f"{target.label}: p50 {p50[target.label]:.2f} ms, p99 {percentile(values, 0.99):.2f} ms, "
            f"{rates[target.label]:.0f} req/s at {args.clients} clients",
            flush=True,
        )
    mcp_ratio = p50["smarteros-mcp"] / p50["bare-mcp"]
    rest_ratio = p50["smarteros-rest"] / p50["bare-ninja"]
    print(f"mcp p50 ratio: {mcp_ratio:.2f} (target <= 2.0)")
    print(f"rest p50 ratio: {rest_ratio:.2f} (target <= 2.0)")
    print(f"mcp throughput ratio: {rates['smarteros-mcp'] / rates['bare-mcp']:.2f} (target >= 0.5)")
    print(
        f"rest throughput ratio: {rates['smarteros-rest'] / rates['bare-ninja']:.2f} "
        "(target >= 0.5)"
    )
    print(f"ratio: {max(mcp_ratio, rest_ratio):.2f}")


if __name__ == "__main__":
    main()
