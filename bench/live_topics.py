"""Live topic viewer under load: one topic produced at a fixed rate, watched by N websockets of
the console served by uvicorn (the real ASGI app, the real Redis channel layer).

Phase 1 (default 2,000 messages/s, 20 sockets): per-socket delivered and missed counts, and the
p95 delay from produce to socket. Targets: 0 missed, p95 <= 1 s.
Phase 2 (default 20,000 messages/s): the server's memory growth (RSS of the uvicorn process)
and the missed counts. Target: growth <= 200 MB; messages the sockets cannot take are counted
as missed, not queued.

The broker is one of the bench's own (Tansu, memory storage), so the shared one is not loaded.
Usage: .venv/bin/python bench/live_topics.py [--sockets 20] [--seconds 10] [--rate 2000]
       [--burst-rate 20000]   (needs PostgreSQL and Redis: make up)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

import django

django.setup()

import orjson  # noqa: E402
import websockets  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from tests.processes import asgi_server, kafka_broker  # noqa: E402

TOPIC = "smarteros.bench.live"


@dataclass
class Watcher:
    delivered: int = 0
    missed: int = 0
    delays: list[float] = field(default_factory=list)


def session_cookie() -> str:
    user, _ = get_user_model().objects.get_or_create(
        username="bench-topics", defaults={"is_superuser": True, "is_staff": True}
    )
    if not user.is_superuser:
        user.is_superuser = True
        user.save(update_fields=["is_superuser"])
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its children (uvicorn runs the app in-process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def produce_at(bootstrap: str, rate: int, seconds: float, stop: threading.Event) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1})
    sent, began = 0, time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - began
        if elapsed >= seconds:
            break
        due = int(rate * elapsed)
        while sent < due:
            body = orjson.dumps({"t": time.time(), "n": sent, "pad": "x" * 100})
            try:
                producer.produce(TOPIC, value=body)
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)
    return sent


async def watch(
    url: str, cookie: str, watcher: Watcher, ready: asyncio.Event, stop: asyncio.Event
) -> None:
    # The socket's own origin, port included (the viewer compares scheme, host and port).
    origin = url.replace("ws", "http", 1).split("/ws/", 1)[0]
    headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
        await socket.send(orjson.dumps({"action": "live", "topic": TOPIC}).decode())
        while True:
            frame = orjson.loads(await socket.recv())
            if frame["type"] == "live":
                break
            if frame["type"] == "error":
                raise RuntimeError(frame)
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), 0.5)
            except TimeoutError:
                continue
            frame = orjson.loads(raw)
            if frame["type"] != "batch":
                continue
            now = time.time()
            watcher.delivered += len(frame["messages"])
            watcher.missed = frame["missed"]
            watcher.delays.extend(now - m["value"]["t"] for m in frame["messages"])


async def phase(
    url: str, cookie: str, bootstrap: str, sockets: int, rate: int, seconds: float, server_pid: int
) -> tuple[list[Watcher], int, float, float]:
    watchers = [Watcher() for _ in range(sockets)]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in watchers]
    tasks = [
        asyncio.create_task(watch(url, cookie, w, r, stop))
        for w, r in zip(watchers, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    before = rss_mb(server_pid)
    peak = before
    stop_producing = threading.Event()
    loop = asyncio.get_running_loop()
    producing = loop.run_in_executor(None, produce_at, bootstrap, rate, seconds, stop_producing)
    while not producing.done():
        peak = max(peak, rss_mb(server_pid))
        await asyncio.sleep(0.25)
    sent = await producing
    await asyncio.sleep(3)  # the last frames
    peak = max(peak, rss_mb(server_pid))
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return watchers, sent, before, peak


def report(title: str, watchers: list[Watcher], sent: int) -> None:
    print(f"\n{title}: {sent} messages produced")
    print(f"{'socket':>6} {'delivered':>10} {'missed':>8}")
    for i, w in enumerate(watchers):
        print(f"{i:>6} {w.delivered:>10} {w.missed:>8}")
    delays = sorted(d for w in watchers for d in w.delays)
    if delays:
        p95 = delays[int(len(delays) * 0.95) - 1]
        print(
            f"delay produce -> socket: p50 {statistics.median(delays) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--burst-rate", type=int, default=20000)
    args = parser.parse_args()

    cookie = session_cookie()
    with kafka_broker() as broker:
        bootstrap = f"127.0.0.1:{broker.port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(TOPIC, 3, 1)]).values():
            future.result()
        server = asgi_server(
            env={
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "TOPICS_MAX_VIEWERS_PER_USER": str(args.sockets * 2),
                "TOPICS_MAX_SOCKETS_PER_USER": str(args.sockets * 2),
            },
            args=("--log-level", "warning"),
        )
        port = server.port
        try:
            url = f"ws://127.0.0.1:{port}/ws/topics/"
            watchers, sent, _, _ = asyncio.run(
                phase(
                    url,
                    cookie,
                    bootstrap,
                    args.sockets,
                    args.rate,
                    args.seconds,
                    server.process.pid,
                )
            )
            report(f"{args.rate}/s, {args.sockets} sockets", watchers, sent)
            missed = sum(w.missed for w in watchers)
            delays = sorted(d for w in watchers for d in w.delays)
            p95 = delays[int(len(delays) * 0.95) - 1] if delays else float("inf")
            print(
                f"targets: 0 missed -> {missed} {'ok' if missed == 0 else 'MISSED'}; "
                f"p95 <= 1 s -> {p95:.3f} s {'ok' if p95 <= 1 else 'SLOW'}"
            )

            watchers, sent, before, peak = asyncio.run(
                phase(
                    url,
                    cookie,
                    bootstrap,
                    args.sockets,
                    args.burst_rate,
                    args.seconds,
                    server.process.pid,
                )
            )
            report(f"{args.burst_rate}/s, {args.sockets} sockets", watchers, sent)
            growth = peak - before
            print(
                f"server memory: {before:.0f} MB before, {peak:.0f} MB peak, growth "
                f"{growth:.0f} MB (target <= 200 MB: {'ok' if growth <= 200 else 'OVER'})"
            )
            print(f"missed per socket: {[w.missed for w in watchers]}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
