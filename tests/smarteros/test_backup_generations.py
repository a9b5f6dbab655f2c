"""Generations of topic backups on real brokers of the test's own: a restore that a broker
fails part-way leaves the last good generation as it was (a backup of that broker is refused),
and the next restore into a fresh broker brings everything back; a backup of idle topics reads
nothing; every file is owner-only."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localstack.services import tansu_argv
from smarteros.events import backup_generations
from smarteros.events.backup import backup_consumer, read_partitions
from smarteros.events.backup_generations import (
    BackupRefused,
    generation_numbers,
    generations_backup,
)
from smarteros.events.generations_restore import generations_restore
from smarteros.infra import kafka
from tests.processes import ServerProcess, free_port, kafka_broker

TOPICS = 120  # tenant-like topics, a third of them dead-letter topics
CREATE_TOPICS = 19  # Kafka API key


class CreateTopicsCutter:
    """A TCP proxy in front of a broker that passes the first `allowed` CreateTopics requests
    and drops the connection on every later one: a broker failing topic creation part-way."""

    def __init__(self, *, listen: int, target: int, allowed: int) -> None:
        self.target, self.allowed, self.seen = target, allowed, 0
        self.server = socket.create_server(("127.0.0.1", listen))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while header := _exactly(client, 4):
                body = _exactly(client, struct.unpack(">i", header)[0])
                if struct.unpack(">h", body[:2])[0] == CREATE_TOPICS:
                    self.seen += 1
                    if self.seen > self.allowed:
                        break
                upstream.sendall(header + body)
        client.close()
        upstream.close()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        sink.close()

    def close(self) -> None:
        self.server.close()


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


@contextlib.contextmanager
def cut_broker(allowed: int) -> Iterator[str]:
    """A fresh broker reached only through a CreateTopicsCutter (it advertises the proxy)."""
    port, proxy_port = free_port(), free_port()
    server = ServerProcess(tansu_argv(port, advertised_port=proxy_port), port=port)
    cutter = CreateTopicsCutter(listen=proxy_port, target=port, allowed=allowed)
    try:
        yield f"127.0.0.1:{proxy_port}"
    finally:
        cutter.close()
        server.stop()


def names() -> list[str]:
    base = [f"t{n:03d}.shopify.webhooks" for n in range(TOPICS * 2 // 3)]
    return base + [f"{name}.dlq" for name in base[: TOPICS // 3]]


def seed(bootstrap: str, *, start: int, count: int) -> None:
    """`count` records spread over every topic, keys and headers included."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    topics = names()
    for n in range(start, start + count):
        producer.produce(
            topics[n % len(topics)],
            key=f"k{n}".encode(),
            value=f"record {n}".encode(),
            headers=[("n", str(n).encode())],
        )
    assert producer.flush(30) == 0


def contents(bootstrap: str) -> dict[str, list[tuple[Any, Any]]]:
    """Every topic's records (key, value) in partition order."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=15)
    partitions = [(t, p) for t in names() for p in metadata.topics[t].partitions]
    consumer = backup_consumer(bootstrap)
    try:
        found = read_partitions(consumer, partitions, timeout=60)
    finally:
        consumer.close()
    result: dict[str, list[tuple[Any, Any]]] = {}
    for (topic, _), records in sorted(found.items()):
        result.setdefault(topic, []).extend((r["key"], r["value"]) for r in records)
    return result


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def test_a_restore_the_broker_fails_part_way_leaves_the_last_good_backup_and_the_next_restores_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "kafka-backup"
    with kafka_broker() as first:
        bootstrap = f"127.0.0.1:{first.port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        kafka.topics_create(admin, [NewTopic(name, 3, 1) for name in names()])
        seed(bootstrap, start=0, count=600)
        generations_restore(root, bootstrap=bootstrap)  # no backup yet: generation 1
        seed(bootstrap, start=600, count=300)
        report = generations_backup(root, bootstrap=bootstrap)
        assert report.records == 300  # only what came since generation 1
        before = contents(bootstrap)
    assert sum(len(records) for records in before.values()) == 900
    good = snapshot(root)
    newest = generation_numbers(root)[-1]

    # Small requests, quickly given up: the broker must fail after the first of several.
    monkeypatch.setattr(kafka, "CREATE_FIRST_BATCH", 30)
    monkeypatch.setattr(kafka, "CREATE_BATCH_SECONDS", 0.0)
    monkeypatch.setattr(kafka, "CREATE_ATTEMPTS", 1)
    monkeypatch.setattr(kafka, "create_timeout", lambda partitions: 3.0)
    lines: list[str] = []
    with cut_broker(allowed=1) as half:
        with pytest.raises(Exception) as failure:
            generations_restore(root, bootstrap=half, progress=lines.append)
        assert "created or present" in "\n".join(lines), lines
        metadata = AdminClient({"bootstrap.servers": half}).list_topics(timeout=15)
        created = [t for t in metadata.topics if not t.startswith("__")]
        assert 0 < len(created) < len(names()), failure.value
        # `make run` stopping after that failed start: nothing is written over the backup.
        with pytest.raises(BackupRefused):
            generations_backup(root, bootstrap=half)
    assert snapshot(root) == good
    assert generation_numbers(root)[-1] == newest

    monkeypatch.undo()
    with kafka_broker() as fresh:
        bootstrap = f"127.0.0.1:{fresh.port}"
        restored, taken = generations_restore(root, bootstrap=bootstrap)
        assert restored.records == 900 and taken is not None
        assert contents(bootstrap) == before
        # The restored broker is backed up again from where it stands: nothing new, nothing lost.
        assert generations_backup(root, bootstrap=bootstrap).records == 0
        seed(bootstrap, start=900, count=30)
        assert generations_backup(root, bootstrap=bootstrap).records == 30
    assert len(generation_numbers(root)) == backup_generations.KEEP
    for path in [root, *root.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_a_backup_of_idle_topics_reads_nothing(tmp_path: Path) -> None:
    root = tmp_path / "kafka-backup"
    with kafka_broker() as broker:
        bootstrap = f"127.0.0.1:{broker.port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        kafka.topics_create(admin, [NewTopic(name, 3, 1) for name in names()])
        seed(bootstrap, start=0, count=200)
        first = generations_backup(root, bootstrap=bootstrap)
        assert first.records == 200
        segments = set((root / "segments").iterdir())
        idle = generations_backup(root, bootstrap=bootstrap)
        assert idle.records == 0 and idle.bytes == 0
        assert set((root / "segments").iterdir()) == segments
