"""CEL filters under pressure: 8 websockets of the topic viewer browse, over and over, with the
costliest expression the evaluator's limits still allow, while `/healthz` is timed.

Phase 1 measures `/healthz` with no load; phase 2 the same while the sockets browse. The
expression nests two comprehensions twice (the limits: nesting 2, 4 comprehensions) over a list
in each message sized so one message costs close to the per-message CPU budget; each browse runs
until its per-request budget or its time budget ends it, and is sent again at once. Target:
`/healthz` p95 < 200 ms under load. Prints both p50/p95, their ratio, and what the sockets got.

By default the bench starts its own broker (Tansu, memory storage) and its own server (uvicorn,
the real ASGI app); `--url` points it at a running server instead (`--bootstrap` then names that
server's broker). Either way it signs in through a session it creates in DATABASE_URL.
Usage: .venv/bin/python bench/cel_pressure.py [--sockets 8] [--seconds 20] [--items 48]
       [--url http://127.0.0.1:8000 --bootstrap 127.0.0.1:9092]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

import django

django.setup()

import httpx  # noqa: E402
import orjson  # noqa: E402
import websockets  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.live_topics import session_cookie  # noqa: E402
from smarteros.infra.evaluator import compile_expression  # noqa: E402
from tests.processes import asgi_server, kafka_broker  # noqa: E402

TOPIC = "smarteros.bench.cel"
PAIR = "value.items.map(a, value.items.map(b, a * b + {n})).size()"
WORST = f"{PAIR.format(n=1)} + {PAIR.format(n=2)} == 0"


def fill(bootstrap: str, messages: int, items: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, 3, 1)]).values():
        try:
            future.result()
        except Exception as exc:  # already there from an earlier run
            if "already exists" not in str(exc).lower():
                raise
    producer = Producer({"bootstrap.servers": bootstrap})
    body = orjson.dumps({"items": list(range(items))})
    for i in range(messages):
        producer.produce(TOPIC, value=body, key=str(i))
        producer.flush(10)  # one record per batch (the local broker counts a batch as one)


def probe(base: str, seconds: float) -> None:
    """Sequential GET /healthz every 50 ms for `seconds`; prints each latency (JSON)."""
    latencies = []
    with httpx.Client(base_url=base, timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            response = client.get("/healthz")
            latencies.append(time.monotonic() - began)
            assert response.status_code == 200, response.text
            time.sleep(0.05)
    print(orjson.dumps(latencies).decode())


async def healthz_latencies(base: str, seconds: float) -> list[float]:
    """/healthz timed from a process of its own: this one's event loop is busy with the
    sockets' frames, and its delays are not the server's."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--probe", base, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    latencies: list[float] = orjson.loads(out.splitlines()[-1])
    return latencies


async def browse_forever(
    url: str, origin: str, cookie: str, cel: str, outcomes: Counter[str], stop: asyncio.Event
) -> None:
    headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
    request = orjson.dumps(
        {"action": "browse", "topic": TOPIC, "start": "oldest", "limit": 1000, "cel": cel}
    ).decode()
    async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
        while not stop.is_set():
            await socket.send(request)
            while not stop.is_set():
                try:
                    frame = orjson.loads(await asyncio.wait_for(socket.recv(), 0.5))
                except TimeoutError:
                    continue
                if frame["type"] == "results":
                    outcomes[f"results (stopped: {frame['stopped']})"] += 1
                    outcomes["messages judged"] += frame["scanned"]
                    break
                if frame["type"] == "error":
                    outcomes[f"error: {frame['message'][:90]}"] += 1
                    await asyncio.sleep(1)  # a refusal (a limit) is retried as a person would
                    break


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the process `pid`, and by its evaluator workers alive now."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(stat: str) -> float:
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    own = used(Path(f"/proc/{pid}/stat").read_text())
    workers = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"evaluator/worker.py" in cmdline:
            workers += used(stat)
    return own, workers


async def timed_phase(base: str, seconds: float, pid: int | None) -> tuple[list[float], str]:
    """/healthz latencies over `seconds`, and the server's CPU use meanwhile (when known)."""
    before = cpu_seconds(pid) if pid else None
    began = time.monotonic()
    latencies = await healthz_latencies(base, seconds)
    if pid is None or before is None:
        return latencies, ""
    after, wall = cpu_seconds(pid), time.monotonic() - began
    web = (after[0] - before[0]) / wall * 100
    workers = max(0.0, after[1] - before[1]) / wall * 100
    return latencies, f"web process {web:.0f}% of a core, evaluator workers {workers:.0f}%"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def run(
    base: str, cookie: str, cel: str, sockets: int, seconds: float, pid: int | None
) -> None:
    idle, idle_cpu = await timed_phase(base, seconds, pid)
    url = base.replace("http", "ws", 1) + "/ws/topics/"
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(browse_forever(url, base, cookie, cel, outcomes, stop))
        for _ in range(sockets)
    ]
    await asyncio.sleep(2)  # every socket has a browse running
    loaded, loaded_cpu = await timed_phase(base, seconds, pid)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    print(f"expression ({len(cel)} chars): {cel}")
    print(f"{'/healthz':>10} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in (("no load", idle), ("8 sockets" if sockets == 8 else "loaded", loaded)):
        print(
            f"{name:>10} {len(values):>9} {statistics.median(values) * 1000:>8.1f} "
            f"{p95(values) * 1000:>8.1f} {max(values) * 1000:>8.1f}"
        )
    print(f"p95 ratio loaded / no load: {p95(loaded) / p95(idle):.2f}")
    if pid:
        print(f"CPU, no load: {idle_cpu}; loaded: {loaded_cpu}")
    print(f"target p95 < 200 ms: {'met' if p95(loaded) < 0.2 else 'MISSED'}")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:>6}  {outcome}")
    if failures:
        print(f"sockets that failed: {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--items", type=int, default=48, help="list length in each message")
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--bootstrap", default=settings.KAFKA_BOOTSTRAP_SERVERS)
    parser.add_argument("--cel", default=WORST, help="another expression, for comparison")
    parser.add_argument("--pid", type=int, help="the running server's process id (CPU figures)")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /healthz otherwise
    compile_expression(args.cel)  # within the limits, or this bench measures nothing
    cookie = session_cookie()
    with ExitStack() as stack:
        base, bootstrap, pid = args.url, args.bootstrap, args.pid
        if base is None:
            broker = stack.enter_context(kafka_broker())
            bootstrap = f"127.0.0.1:{broker.port}"
            server = asgi_server(
                env={
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                    "TOPICS_MAX_SOCKETS_PER_USER": str(args.sockets),
                    "TOPICS_MAX_BROWSES_PER_USER": str(args.sockets),
                },
                args=("--log-level", "warning"),
            )
            stack.callback(server.stop)
            base, pid = f"http://127.0.0.1:{server.port}", server.process.pid
        fill(bootstrap, args.messages, args.items)
        asyncio.run(run(base.rstrip("/"), cookie, args.cel, args.sockets, args.seconds, pid))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        probe(sys.argv[2], float(sys.argv[3]))
    else:
        main()
