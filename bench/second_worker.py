"""A second Celery worker process joins the consumer groups and takes partitions; killing either
worker with SIGKILL mid-stream loses and repeats nothing.

Run it with the environment of the running `scripts/devstack.py run` it measures (the SMARTEROS_*
ports, SMARTEROS_RUN_DIR, DATABASE_URL). It starts a second worker with the stack's own command
line and environment (the `worker` ProcessSpec and `stack_env()` of scripts/devstack.py; only its
heartbeat name differs: `worker-2`), its output in the run folder's logs/worker-2.log, and shows
each consumer group's members before and after, as the members report them in Redis (with the
partitions each holds) and as the broker describes the group (the local broker reports no
members or assignment).

Then two rounds of signed webhooks for --tenants tenants (Shopify orders, which the
flow-n8n-forward group hands to an n8n workflow at a loopback stand-in, and n8n workflow results,
which flow-n8n-whatsapp turns into a WhatsApp message at the stand-in). In each round one worker
gets SIGKILL (its process group: the worker and its pool) part-way through: the second worker in
the first, the stack's own worker in the second (the stack's supervisor restarts it; it rejoins
and takes partitions back). Per flow it prints the events sent, handled (processed-event marks of
the flow's group), what reached the stand-in (the workflow runs and messages it carried out, one
per idempotency key, and the posts it got again with the same key), lost and duplicated; which
partitions stopped at the kill (the killed worker's), the seconds until another member handled
them again, and /readyz once every effect is done. Last line: `lost: N duplicated: N`.

Tenants `{prefix}0000...` are provisioned once and kept: a run resumes. The second worker is
stopped on exit, Ctrl-C included; one left by an interrupted run is stopped first.

Usage: .venv/bin/python bench/second_worker.py [--tenants 4] [--rate 20] [--seconds 30]
         [--kill-after 12] [--prefix second]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import devstack  # noqa: E402  (scripts/: the stack's own process table and environment)

from bench.second_worker_flows import (  # noqa: E402
    FLOWS,
    Event,
    Traffic,
    collect,
    connect,
    drain,
    drive,
    takeover,
)
from bench.tenants_scale import configure, provision_all  # noqa: E402

PID_FILE = devstack.RUN_DIR / "second_worker.pid"


def say(line: str) -> None:
    print(line, flush=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--prefix", default="second", help="slug prefix of the bench's tenants")
    parser.add_argument("--rate", type=float, default=20.0, help="webhooks a second, in all")
    parser.add_argument("--seconds", type=float, default=30.0, help="traffic per round")
    parser.add_argument("--kill-after", type=float, default=12.0, help="seconds into a round")
    parser.add_argument("--drain", type=float, default=420.0, help="most seconds to wait after")
    args = parser.parse_args()
    args.url = f"http://127.0.0.1:{devstack.WEB_PORT}"
    args.kafka = f"127.0.0.1:{devstack.KAFKA_PORT}"
    args.vault = f"http://127.0.0.1:{devstack.VAULT_PORT}"
    args.redis = f"redis://127.0.0.1:{devstack.REDIS_PORT}/0"
    return args


# --- the workers ----------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_group(pid: int, sig: signal.Signals) -> None:
    """`sig` to the worker and its pool: each runs in a session of its own (its pid leads it)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


class SecondWorker:
    """The second worker: the stack's `worker` command line and environment, heartbeat
    `worker-2`. Its pid is kept in the run folder so an interrupted run's is stopped next time."""

    name = "worker-2"

    def __init__(self) -> None:
        self.process: Any = None

    def start(self) -> int:
        spec = next(spec for spec in devstack.PROCESSES if spec.name == "worker")
        env = {**devstack.PROCESS_ENV.get("worker", {}), **devstack.stack_env()}
        self.process = devstack.spawner(env, to_logs=True)(self.name, spec.argv())
        PID_FILE.write_text(str(self.process.pid))
        return int(self.process.pid)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def kill(self) -> None:
        kill_group(self.pid, signal.SIGKILL)
        self.process.wait()
        PID_FILE.unlink(missing_ok=True)

    def stop(self) -> None:
        """A warm shutdown (the consumers commit and leave their groups), SIGKILL after 60 s."""
        if self.process is None or self.process.poll() is not None:
            PID_FILE.unlink(missing_ok=True)
            return
        kill_group(self.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except Exception:
            kill_group(self.pid, signal.SIGKILL)
            self.process.wait()
        PID_FILE.unlink(missing_ok=True)

    @staticmethod
    def stop_leftover(stack_pid: int) -> None:
        """Stop the second worker an interrupted run left (never the stack's, should its pid
        have been reused)."""
        try:
            pid = int(PID_FILE.read_text())
        except (OSError, ValueError):
            return
        if (
            pid != stack_pid
            and _alive(pid)
            and "celery" in _cmdline(pid)
            and " worker" in _cmdline(pid)
        ):
            say(f"stopping the second worker an interrupted run left (pid {pid})")
            kill_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            if _alive(pid):
                kill_group(pid, signal.SIGKILL)
        PID_FILE.unlink(missing_ok=True)


def stack_worker(web: Any) -> tuple[int, int]:
    """The stack's own worker as its supervisor publishes it: (pid, restarts)."""
    state = web.get("/readyz").json()["processes"]["worker"]
    pid = int(state["pid"] or 0)
    if state["state"] != "running" or "celery" not in _cmdline(pid):
        raise RuntimeError(f"the stack's worker is not running: {state}")
    return pid, int(state["restarts"])


# --- the groups' members ----------------------------------------------------------------------


def members(partitions: dict[tuple[str, int], int] | None = None) -> dict[str, dict[int, float]]:
    """group -> {pid: seconds since that member last reported}, from the members' reports;
    `partitions` collects how many partitions each (group, pid) reported holding."""
    from smarteros.events.progress import _key as progress_key
    from smarteros.infra.redis import get_redis

    now, found = time.time(), dict[str, dict[int, float]]()
    for name, raw in get_redis().hgetall(progress_key()).items():
        entry = json.loads(raw)  # the field is "group@host:pid"
        pid = int(str(name).rsplit(":", 1)[1])
        found.setdefault(entry["group"], {})[pid] = now - entry["reported_at"]
        if partitions is not None and "partitions" in entry:
            partitions[(entry["group"], pid)] = entry["partitions"]
    return found


def live(pids: dict[int, float]) -> set[int]:
    from smarteros.events.progress import REPORT_SECONDS

    return {pid for pid, silent in pids.items() if silent <= 3 * REPORT_SECONDS}


_admin: Any = None


def broker_view() -> dict[str, str]:
    """group -> its state and members as the broker describes them (AdminClient)."""
    from smarteros.events.consumers import group_id
    from smarteros.events.groups import consumer_groups_known
    from smarteros.infra.kafka import admin_client

    global _admin
    _admin = _admin or admin_client()  # one for the run: each closed one logs a purge
    admin, view = _admin, {}
    for group in consumer_groups_known():
        # One group a request: the local broker leaves a request naming all five unanswered.
        future = admin.describe_consumer_groups([group_id(group)], request_timeout=10)
        try:
            described = future[group_id(group)].result(timeout=15)
        except Exception as exc:
            view[group] = f"not described ({exc})"
            continue
        held = [
            len(m.assignment.topic_partitions) if m.assignment else 0 for m in described.members
        ]
        view[group] = (
            f"{described.state.name.lower()}, {len(held)} members, partitions {held}"
            if held
            else f"{described.state.name.lower()}, no members reported"
        )
    return view


def show_members(title: str, who: dict[int, str]) -> None:
    say(title)
    broker = broker_view()
    held: dict[tuple[str, int], int] = {}
    for group, pids in sorted(members(held).items()):
        shown = ", ".join(
            who.get(pid, f"pid {pid}")
            + (f" ({held[(group, pid)]} partitions)" if (group, pid) in held else "")
            for pid in sorted(live(pids))
        )
        # A killed member's last report stays until the group took its partitions (or it is
        # forgotten after progress.FORGET_SECONDS).
        silent = ", ".join(
            f"{pid} {s:.0f}s" for pid, s in sorted(pids.items()) if pid not in live(pids)
        )
        say(
            f"  {group:18} members: {shown}{f' (silent reports: {silent})' if silent else ''}; "
            f"broker: {broker.get(group, '-')}"
        )


def wait_joined(pid: int, timeout: float = 120.0) -> float:
    """Seconds until every group has a live report from `pid`'s consumers."""
    from smarteros.events.groups import consumer_groups_known

    started, groups = time.monotonic(), set(consumer_groups_known())
    while time.monotonic() - started < timeout:
        now = members()
        if all(pid in live(now.get(group, {})) for group in groups):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"pid {pid} did not join every consumer group within {timeout:.0f}s")


def wait_partitions(pid: int, timeout: float = 120.0) -> str:
    """Seconds until `pid` reports holding partitions in both flows' groups (the cooperative
    rebalance hands them over in a second step)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        held: dict[tuple[str, int], int] = {}
        members(held)
        if all(held.get((group, pid), 0) for group in FLOWS.values()):
            return f"{time.monotonic() - started:.1f}s"
        time.sleep(1.0)
    return f"not within {timeout:.0f}s"


# --- a round ----------------------------------------------------------------------------------


@dataclass
class Figures:
    sent: int = 0
    handled: int = 0
    reached: int = 0
    lost: int = 0
    duplicated: int = 0
    resent: int = 0
    again: int = 0  # effects attempted more than once (a killed worker held their lease)


def figures(events: list[Event]) -> Figures:
    return Figures(
        sent=len(events),
        handled=sum(e.handled_at is not None for e in events),
        reached=sum(e.applied > 0 for e in events),
        lost=sum(e.applied == 0 for e in events),
        # A workflow run or message carried out twice, or a second effect for one event.
        duplicated=sum(max(0, e.applied - 1) + max(0, len(e.effects) - 1) for e in events),
        resent=sum(max(0, e.posts - e.applied) for e in events),
        again=sum(attempts > 1 for e in events for _, attempts in e.effects),
    )


def why_lost(event: Event) -> str:
    if not event.records:
        return "no record on Kafka"
    if event.handled_at is None:
        return "on Kafka, not handled by its flow"
    return f"handled; effects {event.effects or 'none'}; posts {event.posts}"


def play_round(
    number: int, args: argparse.Namespace, saas: Any, slugs: list[str], victim: str, kill: Any
) -> Figures:
    """Traffic for --seconds, `kill()` --kill-after seconds in; the figures of both flows."""
    import httpx

    traffic, began = Traffic(), time.time()
    sender = threading.Thread(
        target=drive, args=(args.url, slugs, args.rate, args.seconds, traffic), daemon=True
    )
    sender.start()
    time.sleep(args.kill_after)
    killed_at = time.time()
    kill()
    sender.join()
    say(
        f"round {number}: SIGKILL to {victim} {args.kill_after:.0f}s into {args.seconds:.0f}s of traffic"
    )
    if traffic.refused:
        say(f"  webhooks not accepted: {dict(traffic.refused)}")
    drained = drain(saas, traffic, began, args.drain)
    events = collect(saas, traffic)
    total = Figures()
    for kind, group in FLOWS.items():
        mine = [e for e in events.values() if e.kind == kind]
        got = figures(mine)
        seen = takeover(mine, killed_at)
        where = "n8n workflow runs" if kind == "shopify" else "WhatsApp messages"
        say(
            f"  {group}: sent {got.sent}, handled {got.handled}, {where} {got.reached}, "
            f"lost {got.lost}, duplicated {got.duplicated} (effects attempted more than once: "
            f"{got.again}; posted again with the same idempotency key: {got.resent})"
        )
        partitions = len(seen.stopped) + len(seen.flowing)
        took = f"{seen.seconds:.1f}s" if seen.seconds is not None else "-"
        say(
            f"    partitions: {len(seen.stopped)} of {partitions} stopped at the kill (held by "
            f"{victim}), {len(seen.flowing)} kept flowing; taken over {took} after the kill"
        )
        twice = sum(len(e.records) > 1 for e in mine)
        if twice:
            say(f"    {twice} of them are on Kafka more than once")
        for event in [e for e in mine if e.applied == 0][:5]:
            say(f"    lost {event.marker} ({event.slug}): {why_lost(event)}")
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(got, name))
    say(f"  all at the stand-in and every effect done {drained:.0f}s after the traffic stopped")
    ready = httpx.get(f"{args.url}/readyz", timeout=30).json()
    say(
        f"  /readyz {time.time() - killed_at:.0f}s after the kill: {ready['status']} {ready['degraded']}"
    )
    return total


def watch_restart(web: Any, old_pid: int, killed_at: float, timeout: float = 180.0) -> str:
    """How the stack's supervisor brought its worker back: restart and rejoin, from the kill."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, restarts = stack_worker(web)
        except Exception:
            pid, restarts = old_pid, 0
        if pid != old_pid:
            restarted = time.time() - killed_at
            try:
                joined = wait_joined(pid) + restarted
            except RuntimeError as exc:
                return f"the stack's worker was restarted (pid {pid}), but {exc}"
            return (
                f"the stack's supervisor restarted its worker {restarted:.1f}s after the kill "
                f"(restart {restarts}, pid {old_pid} -> {pid}); its consumers reported in every "
                f"group {joined:.1f}s after the kill"
            )
        time.sleep(0.25)
    return f"the stack's supervisor did not restart its worker within {timeout:.0f}s"


def main() -> int:
    args = arguments()
    configure(args)
    import httpx

    from tests.fixtures.saas import SaasServer

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    web = httpx.Client(base_url=args.url, timeout=30)
    SecondWorker.stop_leftover(stack_worker(web)[0])
    second = SecondWorker()
    slugs = [f"{args.prefix}{i:04d}" for i in range(args.tenants)]
    provision_all(args.prefix, args.tenants)
    totals: list[Figures] = []
    try:
        with SaasServer() as saas:
            connect(slugs, saas.url)
            stack_pid, _ = stack_worker(web)
            who = {stack_pid: f"stack worker {stack_pid}"}
            say(f"the stack's worker: pid {stack_pid}: {_cmdline(stack_pid).strip()}")
            show_members("before: the stack's worker alone", who)

            pid = second.start()
            who[pid] = f"worker 2 {pid}"
            say(f"second worker started (pid {pid}); in every group after {wait_joined(pid):.1f}s")
            say(f"  holding partitions of both flows' groups after {wait_partitions(pid)} more")
            show_members("after the second worker joined", who)
            totals.append(play_round(1, args, saas, slugs, f"worker 2 {pid}", second.kill))
            show_members("after round 1", who)

            pid = second.start()
            who[pid] = f"worker 2 {pid}"
            say(
                f"second worker started again (pid {pid}); in every group after {wait_joined(pid):.1f}s"
            )
            say(f"  holding partitions of both flows' groups after {wait_partitions(pid)} more")
            stack_pid, _ = stack_worker(web)
            restart: list[str] = []

            def kill_stack_worker() -> None:
                kill_group(stack_pid, signal.SIGKILL)
                killed_at = time.time()
                watcher = threading.Thread(
                    target=lambda: restart.append(watch_restart(web, stack_pid, killed_at)),
                    daemon=True,
                )
                watcher.start()

            victim = f"stack worker {stack_pid}"
            totals.append(play_round(2, args, saas, slugs, victim, kill_stack_worker))
            while not restart:
                time.sleep(0.5)
            say(f"  {restart[0]}")
            restarted, _ = stack_worker(web)
            who[restarted] = f"stack worker {restarted} (restarted)"
            show_members("after round 2", who)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        second.stop()
    lost = sum(f.lost for f in totals)
    duplicated = sum(f.duplicated for f in totals)
    say(f"lost: {lost} duplicated: {duplicated}")
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
