"""tools/call latency over stdio: a bare SDK server with one echo tool vs SmarterOS's
tenant_get_tenant, measured in the same run with the same client. Target: ours at most 1.5x the
bare server's p50 (issue 28; docs/performance/mcp-stdio.md has the profile and the figures).

The client speaks newline-delimited JSON-RPC on the servers' stdin/stdout directly, so the figures
are the servers' own round trips (the SDK client would add its output-schema validation to ours).

Usage: .venv/bin/python bench/mcp_latency.py [--calls N]   (needs the local stack: make up)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BARE_SERVER = ROOT / "tests" / "fixtures" / "echo_mcp_server.py"
ROUND = 100  # calls per server before switching to the other


class StdioPeer:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit(f"server exited: {self.process.args!r}")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                return message  # type: ignore[no-any-return]

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def call(peer: StdioPeer, tool: str, arguments: dict[str, Any]) -> float:
    started = time.perf_counter()
    reply = peer.request("tools/call", {"name": tool, "arguments": arguments})
    elapsed = (time.perf_counter() - started) * 1000
    if "error" in reply or reply["result"].get("isError"):
        raise SystemExit(f"{tool} failed: {reply}")
    return elapsed


def bench_tenant_key() -> str:
    """A tenant of its own with a limit high enough that the bench never meets it."""
    script = (
        "from tenants.models import Tenant\n"
        "from tenants.scope import dangerously_unscoped\n"
        "from tenants.services import api_key_create\n"
        "with dangerously_unscoped():\n"
        "    t, _ = Tenant.objects.update_or_create(slug='bench', defaults={'name': 'Bench', "
        "'status': 'active', 'rate_limit_per_minute': 1000000})\n"
        "    t.api_keys.filter(name='bench').delete()\n"
        "    print(api_key_create(tenant=t, name='bench').secret)\n"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    env = dict(os.environ)
    print(
        f"tools/call over stdio, {args.calls} calls each after {args.warmup} warm-up calls",
        flush=True,
    )
    runs = [
        ("bare", [sys.executable, str(BARE_SERVER), "stdio"], env, "echo", {"text": "hello"}),
        (
            "smarteros",
            [sys.executable, "manage.py", "mcp_serve"],
            # As in production: DEBUG would also log every SQL statement in memory.
            {**env, "SMARTEROS_API_KEY": bench_tenant_key(), "DJANGO_DEBUG": "false"},
            "tenant_get_tenant",
            {},
        ),
    ]
    peers = {label: StdioPeer(argv, run_env) for label, argv, run_env, _, _ in runs}
    samples: dict[str, list[float]] = {label: [] for label in peers}
    try:
        for label, _, _, tool, arguments in runs:
            for _ in range(args.warmup):
                call(peers[label], tool, arguments)
        # Alternating rounds: both servers see the same machine (CPU frequency, other
        # processes), so the ratio holds even when the absolute figures drift during the run.
        for _ in range(-(-args.calls // ROUND)):
            for label, _, _, tool, arguments in runs:
                samples[label] += [call(peers[label], tool, arguments) for _ in range(ROUND)]
    finally:
        for peer in peers.values():
            peer.close()
    p50 = {}
    for label, _, _, tool, _ in runs:
        p50[label] = statistics.median(samples[label])
        print(
            f"{label}: {tool} p50 {p50[label]:.3f} ms, "
            f"p99 {percentile(samples[label], 0.99):.3f} ms",
            flush=True,
        )
    print(f"ratio: {p50['smarteros'] / p50['bare']:.2f}")


if __name__ == "__main__":
    main()
