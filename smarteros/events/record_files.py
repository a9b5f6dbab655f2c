"""The files of a topic backup, and the worker processes that replay them.

Format 2 (written now): per partition, a gzip'd stream of records, each framed as
`>qiii` (timestamp, key length, value length, header count; -1 for a missing key or value),
the key, the value, then per header `>i` name length, the name, `>i` value length, the value.
A partition's content checksum is the SHA-256 of that uncompressed stream; reading a restored
partition back, the same frames are rebuilt from the messages and hashed. Offsets are left out:
a restore may renumber them.

Format 1 (still restored): JSON lines with base64 fields, checksummed over each record's JSON.

This module imports nothing of the project: each replay worker runs it as a script of its own
(`python record_files.py`, a job as JSON on stdin, progress lines on stderr, the result as JSON
on stdout), a fresh interpreter with its own producer and consumer (never a fork: librdkafka's
threads do not survive one, and a spawned multiprocessing child would re-run the caller's main).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

# What the client takes and gives back as headers (a consumer hands over a list).
Headers = list[tuple[str, str | bytes | None]]
Record = tuple[int, bytes | None, bytes | None, Headers]

_FRAME = struct.Struct(">qiii")
_LENGTH = struct.Struct(">i")
# Records asked of the client per call when reading: per-message polling costs more than the
# broker's fetch at these volumes.
CONSUME_BATCH = 10_000
PROGRESS_EVERY = 100_000
# Partitions a reader has assigned at once: some brokers (Tansu) answer a fetch for thousands
# of partitions so slowly that nothing arrives, a hundred at a time they answer in seconds.
SCAN_WINDOW = 100


def _length(data: bytes | None) -> int:
    return -1 if data is None else len(data)


def _bytes(data: str | bytes | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def frame(timestamp: int, key: bytes | None, value: bytes | None, headers: Headers) -> bytes:
    """One record as format 2 stores (and checksums) it."""
    parts = [
        _FRAME.pack(timestamp, _length(key), _length(value), len(headers)),
        key or b"",
        value or b"",
    ]
    for name, text in headers:
        raw, data = name.encode(), _bytes(text)
        parts += [_LENGTH.pack(len(raw)), raw, _LENGTH.pack(_length(data)), data or b""]
    return b"".join(parts)


def frame_message(message: Any) -> bytes:
    return frame(message.timestamp()[1], message.key(), message.value(), _headers(message))


def _headers(message: Any) -> Headers:
    return cast(Headers, message.headers() or [])


def unframe(stream: bytes) -> Iterator[Record]:
    """The records of an uncompressed format 2 stream."""
    view, position, end = memoryview(stream), 0, len(stream)
    unpack_frame, unpack_length = _FRAME.unpack_from, _LENGTH.unpack_from
    while position < end:
        timestamp, key_length, value_length, header_count = unpack_frame(view, position)
        position += 20
        key = None
        if key_length >= 0:
            key = stream[position : position + key_length]
            position += key_length
        value = None
        if value_length >= 0:
            value = stream[position : position + value_length]
            position += value_length
        headers: Headers = []
        for _ in range(header_count):
            (name_length,) = unpack_length(view, position)
            name = stream[position + 4 : position + 4 + name_length].decode()
            position += 4 + name_length
            (data_length,) = unpack_length(view, position)
            position += 4
            data = None
            if data_length >= 0:
                data = stream[position : position + data_length]
                position += data_length
            headers.append((name, data))
        yield timestamp, key, value, headers


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def format1_json(record: Record) -> bytes:
    """What format 1 checksums for a record."""
    timestamp, key, value, headers = record
    return json.dumps(
        [_b64(key), _b64(value), [[k, _b64(_bytes(v))] for k, v in headers], timestamp]
    ).encode()


def read_records(path: Path, file_format: int) -> Iterator[Record]:
    raw = zlib.decompress(path.read_bytes(), wbits=31)  # gzip: one allocation, no line reads
    if file_format == 2:
        yield from unframe(raw)
        return
    for line in raw.splitlines():
        if line.strip():
            item = json.loads(line)
            yield (
                item["timestamp"],
                _unb64(item["key"]),
                _unb64(item["value"]),
                [(k, _unb64(v)) for k, v in item["headers"]],
            )


class PartitionWriter:
    """One partition's backup file (format 2), written as its records arrive. Records are held
    in memory until WRITE_AFTER bytes, and the file opened only then: a backup of thousands of
    small partitions would otherwise hold a compressor (a few hundred KiB) per partition."""

    WRITE_AFTER = 1 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: Any = None
        self.pending = bytearray()
        self.digest = hashlib.sha256()
        self.count = 0
        self.first_offset: int | None = None
        self.last_offset: int | None = None

    def add(self, message: Any) -> None:
        if self.first_offset is None:
            self.first_offset = message.offset()
        self.last_offset = message.offset()
        data = frame_message(message)
        self.digest.update(data)
        self.pending += data
        self.count += 1
        if len(self.pending) >= self.WRITE_AFTER:
            if self.file is None:
                # The fastest level: written once, read at restore where time counts.
                self.file = gzip.open(self.path, "wb", compresslevel=1)  # noqa: SIM115
            self.file.write(self.pending)
            self.pending.clear()

    def close(self) -> dict[str, Any]:
        if self.file is None:
            self.path.write_bytes(gzip.compress(bytes(self.pending), compresslevel=1, mtime=0))
        else:
            self.file.write(self.pending)
            self.file.close()
        self.pending.clear()
        return {
            "file": self.path.name,
            "records": self.count,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "content_sha256": self.digest.hexdigest(),
        }

    def discard(self) -> None:
        """Drop what was written (a backup that did not complete)."""
        if self.file is not None:
            self.file.close()
        self.path.unlink(missing_ok=True)


# --- replay workers ------------------------------------------------------------------------


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def replay_and_verify(job: dict[str, Any]) -> dict[str, Any]:
    """Produce every record of the job's partition files, then read those partitions back and
    return, per partition, the count and content checksum found on the broker.

    job: name, format, producer and consumer configs, partitions [{topic, partition, path}]
    (or, for a partition kept in several files, `paths` in order and `counts`: the records of
    each, to checksum each file's share of what is read back)."""
    started = time.monotonic()
    failed: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failed.append(f"{message.topic()}[{message.partition()}]: {error.str()}")

    # flush() also empties the queue of records that failed (timed out): count them.
    producer = Producer({**job["producer"], "on_delivery": delivered})
    produce, poll = producer.produce, producer.poll
    total = 0
    for part in job["partitions"]:
        topic, partition = part["topic"], part["partition"]
        records = (
            record
            for path in part.get("paths") or [part["path"]]
            for record in read_records(Path(path), job["format"])
        )
        for timestamp, key, value, headers in records:
            while True:
                try:
                    produce(
                        topic,
                        value,
                        key,
                        partition=partition,
                        timestamp=timestamp,
                        headers=headers,
                    )
                    break
                except BufferError:  # the local queue is full: let the broker catch up
                    poll(0.05)
            total += 1
            if total % PROGRESS_EVERY == 0:
                poll(0)
                _say(f"{job['name']}: {total} records replayed")
    if producer.flush(300) or failed:
        raise RuntimeError(
            f"the broker did not acknowledge {len(failed) or 'every'} record(s): "
            + "; ".join(failed[:3])
        )
    replayed = time.monotonic() - started
    _say(f"{job['name']}: {total} records acknowledged in {replayed:.1f}s; reading them back")
    found = read_back(Consumer(job["consumer"]), job["partitions"], job["format"])
    return {"records": total, "found": found, "seconds": time.monotonic() - started}


def read_back(
    consumer: Consumer, partitions: list[dict[str, Any]], file_format: int, timeout: float = 120
) -> dict[str, list[Any]]:
    """`"topic:partition" -> [count, content checksum, next offset, [checksum per file]]` of what
    the broker holds; the per-file checksums split the records by the part's `counts`."""
    where_all = [(p["topic"], p["partition"]) for p in partitions]
    digests = {tp: hashlib.sha256() for tp in where_all}
    bounds = {(p["topic"], p["partition"]): _bounds(p.get("counts") or []) for p in partitions}
    pieces: dict[tuple[str, int], list[Any]] = {tp: [hashlib.sha256()] for tp in where_all}
    counts = dict.fromkeys(digests, 0)
    next_offsets = dict.fromkeys(digests, 0)
    waiting = list(reversed(list(digests)))
    pending: set[tuple[str, int]] = set()

    def assign_more() -> None:
        added = []
        while waiting and len(pending) < SCAN_WINDOW:
            where = waiting.pop()
            pending.add(where)
            added.append(TopicPartition(where[0], where[1], OFFSET_BEGINNING))
        if added:
            consumer.incremental_assign(added)

    try:
        assign_more()
        deadline = time.monotonic() + timeout
        while pending:
            messages = consumer.consume(CONSUME_BATCH, 1.0)
            if not messages:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no end of partition for {sorted(pending)[:3]}")
                continue
            deadline = time.monotonic() + timeout
            ended = []
            for message in messages:
                where = (message.topic() or "", message.partition() or 0)
                error = message.error()
                if error is None:
                    if where not in pending:
                        continue
                    if file_format == 2:
                        data = frame_message(message)
                    else:
                        record = (
                            message.timestamp()[1],
                            message.key(),
                            message.value(),
                            _headers(message),
                        )
                        data = format1_json(record)
                    digests[where].update(data)
                    counts[where] += 1
                    if counts[where] > bounds[where].get(len(pieces[where]), counts[where]):
                        pieces[where].append(hashlib.sha256())
                    pieces[where][-1].update(data)
                    next_offsets[where] = (message.offset() or 0) + 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    if where in pending:
                        pending.discard(where)
                        ended.append(TopicPartition(where[0], where[1]))
                else:
                    raise RuntimeError(f"{where[0]}[{where[1]}]: {error}")
            if ended:
                consumer.incremental_unassign(ended)
                assign_more()
    finally:
        consumer.close()
    return {
        f"{t}:{p}": [
            counts[(t, p)],
            digests[(t, p)].hexdigest(),
            next_offsets[(t, p)],
            [piece.hexdigest() for piece in pieces[(t, p)]],
        ]
        for t, p in digests
    }


def _bounds(counts: list[int]) -> dict[int, int]:
    """Piece number (from 1) -> the running record count at which that piece ends."""
    ends, total = {}, 0
    for number, count in enumerate(counts, start=1):
        total += count
        ends[number] = total
    return ends


if __name__ == "__main__":
    sys.stdout.write(json.dumps(replay_and_verify(json.load(sys.stdin))))
