"""`make run`'s supervised stack, each test with its own broker, OpenBao, web port and run folder:
state survives a restart, a crashed process comes back (and a crash loop shows on /readyz),
and load with new tenants' topics leaves every process up."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
from confluent_kafka import Consumer, Producer

from smarteros.infra.redis import get_redis
from smarteros.infra.supervision import supervisor_key
from tests.processes import ROOT, free_port


class Stack:
    """`scripts/devstack.py run` with Kafka and OpenBao of its own; PostgreSQL, Redis and
    ClickHouse are the shared ones (they keep their data across restarts anyway)."""

    def __init__(self, run_dir: Path, processes: str) -> None:
        self.run_dir = run_dir
        self.kafka_port, self.vault_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "SMARTEROS_RUN_DIR": str(run_dir),
            "SMARTEROS_KAFKA_PORT": str(self.kafka_port),
            "SMARTEROS_VAULT_PORT": str(self.vault_port),
            "SMARTEROS_VAULT_CLUSTER_PORT": str(free_port()),
            "SMARTEROS_WEB_PORT": str(free_port()),
            "SMARTEROS_SERVICES": "kafka,vault",
            "SMARTEROS_PROCESSES": processes,
        }
        self.web_port = int(self.env["SMARTEROS_WEB_PORT"])
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = run_dir / "devstack.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "scripts/devstack.py", "run"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while "SmarterOS is running" not in self.log()[self.log_size :]:
            assert self.process.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, self.log()[-3000:]
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                assert self.process.wait(timeout=120) == 0, self.log()[-3000:]
            finally:
                if self.process.poll() is None:
                    os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def processes(self) -> dict[str, Any]:
        raw = get_redis().get(supervisor_key(str(self.web_port)))
        assert raw, "the supervisor published no status"
        return dict(json.loads(raw)["processes"])

    def readyz(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.web_port}/readyz"
        with urllib.request.urlopen(url, timeout=15) as response:
            return dict(json.load(response))


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="smarteros-stack-") as folder:
        yield Path(folder)


def test_credentials_and_topic_messages_survive_a_restart(stack_dir: Path) -> None:
    stack = Stack(stack_dir, processes="relay")
    stack.start()
    try:
        token = stack.env.get("VAULT_TOKEN", "smarteros-dev-root")
        mount = os.environ.get("VAULT_TRANSIT_MOUNT", "transit")
        vault = hvac.Client(url=f"http://127.0.0.1:{stack.vault_port}", token=token)
        vault.secrets.transit.create_key(name="tenant-restart", mount_point=mount)
        secret = base64.b64encode(b"shpat_survives").decode()
        ciphertext = vault.secrets.transit.encrypt_data(
            name="tenant-restart", plaintext=secret, mount_point=mount
        )["data"]["ciphertext"]
        topic = f"restart.{uuid.uuid4().hex[:8]}"
        producer = Producer({"bootstrap.servers": stack.bootstrap})
        for i in range(50):
            producer.produce(topic, key=str(i), value=f"message {i}".encode())
        assert producer.flush(30) == 0
    finally:
        stack.stop()
    assert "backing up topics" in stack.log()

    stack.start()
    try:
        assert "kafka: restored from" in stack.log()
        vault = hvac.Client(url=f"http://127.0.0.1:{stack.vault_port}", token=token)
        plaintext = vault.secrets.transit.decrypt_data(
            name="tenant-restart", ciphertext=ciphertext, mount_point=mount
        )["data"]["plaintext"]
        assert base64.b64decode(plaintext) == b"shpat_survives"
        consumer = Consumer(
            {
                "bootstrap.servers": stack.bootstrap,
                "group.id": f"restart-{uuid.uuid4().hex[:6]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        values: set[bytes] = set()
        deadline = time.monotonic() + 60
        while len(values) < 50 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.add(message.value() or b"")
        consumer.close()
        assert values == {f"message {i}".encode() for i in range(50)}
    finally:
        stack.stop()


def test_a_crashed_process_is_restarted_and_a_crash_loop_shows_on_readyz(
    stack_dir: Path,
) -> None:
    stack = Stack(stack_dir, processes="web,relay")
    stack.start()
    try:
        first = stack.processes()["relay"]["pid"]
        os.kill(first, signal.SIGSEGV)
        deadline = time.monotonic() + 30
        while stack.processes()["relay"]["pid"] in (None, first):
            assert time.monotonic() < deadline, stack.log()[-2000:]
            time.sleep(0.3)
        assert "relay killed by SIGSEGV; restart 1 in 1s" in stack.log()
        assert stack.processes()["web"]["restarts"] == 0  # the rest kept running
        assert "relay" in stack.readyz()["workers"]

        for _ in range(4):  # 5 exits within a minute: a crash loop
            pid = stack.processes()["relay"]["pid"]
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while stack.processes()["relay"]["pid"] in (None, pid):
                assert time.monotonic() < deadline, stack.log()[-2000:]
                time.sleep(0.3)
        body = stack.readyz()
        assert body["status"] == "degraded", body
        assert any(line.startswith("relay: crash loop") for line in body["degraded"]), body
        assert body["processes"]["relay"]["state"] == "crash-loop"
        assert "crash loop: 5 exits in 60s" in stack.log()
    finally:
        stack.stop()


def bench(stack: Stack, *args: str) -> subprocess.Popen[str]:
    """A benchmark script of the project, pointed at the stack's broker and OpenBao."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "VAULT_ADDR": f"http://127.0.0.1:{stack.vault_port}",
    }
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> None:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]


@pytest.mark.django_db
def test_load_with_new_tenants_topics_leaves_every_process_up_or_restarted_with_nothing_lost(
    stack_dir: Path, settings: Any
) -> None:
    from smarteros.events.catalog import tenant_topics
    from smarteros.events.status import consumer_lag
    from smarteros.events.topics import topics_sync
    from smarteros.infra.kafka import forget_producers

    stack = Stack(stack_dir, processes="worker,relay")
    stack.start()
    settings.KAFKA_BOOTSTRAP_SERVERS = stack.bootstrap
    forget_producers()
    try:
        # What killed the consumers under `make run`: the events benchmark (outbox writes through
        # the stack's relay, topics created and deleted), then the telemetry one, while a new
        # tenant's topics appear under the consumers' pattern subscriptions.
        started, tenants = time.monotonic(), 0
        # New topics make every pattern-subscribed group rebalance (slow on this broker), so
        # a tenant every 30 s: often enough to matter, rare enough for groups to consume.
        next_tenant = started
        while time.monotonic() - started < 60:
            events = bench(stack, "bench/events.py", "--events", "20000", "--rounds", "3")
            while events.poll() is None:
                if time.monotonic() >= next_tenant:
                    topics_sync(tenant_topics(f"load{uuid.uuid4().hex[:6]}"))
                    tenants += 1
                    next_tenant += 30
                time.sleep(0.5)
            finished(events)
        finished(bench(stack, "bench/telemetry.py", "--events", "20000", "--rows", "1000"))
        assert tenants >= 2

        processes = stack.processes()
        print(
            f"{tenants} tenants' topics; restarts: "
            + str({n: p["restarts"] for n, p in processes.items()})
        )
        assert all(p["state"] == "running" for p in processes.values()), processes
        if any(p["restarts"] for p in processes.values()):
            # A crash replays from the last commit: the restarted consumers must catch up.
            deadline = time.monotonic() + 90
            prefix = settings.KAFKA_CONSUMER_GROUP_PREFIX + "."
            while True:
                lag = {g: v["total"] for g, v in consumer_lag().items() if g.startswith(prefix)}
                if not any(lag.values()) or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert not any(lag.values()), (lag, stack.log()[-3000:])
        else:
            assert "killed by" not in stack.log()
    finally:
        forget_producers()
        stack.stop()


def test_a_start_that_cannot_restore_comes_up_degraded_and_keeps_the_backup(
    stack_dir: Path,
) -> None:
    stack = Stack(stack_dir, processes="web")
    stack.start()
    try:
        producer = Producer({"bootstrap.servers": stack.bootstrap})
        for i in range(20):
            producer.produce("kept.topic", key=str(i), value=f"message {i}".encode())
        assert producer.flush(30) == 0
    finally:
        stack.stop()
    backup = stack_dir / "kafka-backup"
    for manifest in (backup / "generations").iterdir():  # none verifies any more
        manifest.write_bytes(manifest.read_bytes()[:-5])
    kept = {p: p.read_bytes() for p in backup.rglob("*") if p.is_file() and p.name != ".lock"}

    stack.start()
    try:
        assert "running degraded" in stack.log()
        body = stack.readyz()
        assert body["status"] == "degraded", body
        problem = next(line for line in body["degraded"] if line.startswith("kafka backup:"))
        assert "not restored from generation" in problem
        assert "manage.py topics generation-restore" in problem, problem
    finally:
        stack.stop()
    assert "not backed up: this broker's restore did not complete" in stack.log(), stack.log()[
        -3000:
    ]
    now = {p: p.read_bytes() for p in backup.rglob("*") if p.is_file() and p.name != ".lock"}
    assert now == kept
