"""Producer ids of an in-memory broker that restarts while its clients live on.

An idempotent producer gets its producer id once, from InitProducerId, and the broker drops a
batch whose (producer id, sequence) it has seen already, answering as if it were written. A
broker that keeps its state in memory (the local stack's) forgets which ids it handed out when
it restarts, and hands them out again: a restored topic's writer or a new process then holds
the id of a producer that is still running, and that producer's next batches are acknowledged
and dropped. So the topic backup notes the next id the broker would hand out, and a restore
first moves the restarted broker's counter past it.

InitProducerId is sent over the Kafka protocol directly (version 3, the first that Tansu answers,
no transactional id): the Kafka clients ask for one per producer, which would mean a producer per
id to skip.
"""

from __future__ import annotations

import socket
import struct

INIT_PRODUCER_ID = 22
_CLIENT_ID = b"smarteros-producer-ids"
# Requests sent before reading the answers: one round trip per batch rather than per id.
_PIPELINE = 500
# Beyond this many ids to skip, something else is wrong (a different broker, say): say so.
MAX_SKIP = 2_000_000


class ProducerIdError(Exception):
    pass


def _request(correlation: int) -> bytes:
    # A flexible version: request header v2 (client id, then no tagged fields), compact fields.
    header = struct.pack(">hhih", INIT_PRODUCER_ID, 3, correlation, len(_CLIENT_ID)) + _CLIENT_ID
    # No transactional id (compact null), transaction timeout (unused), no producer id or epoch
    # yet, no tagged fields.
    body = b"\x00" + struct.pack(">iqh", 60_000, -1, -1) + b"\x00"
    payload = header + b"\x00" + body
    return struct.pack(">i", len(payload)) + payload


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ProducerIdError("the broker closed the connection")
        data += chunk
    return bytes(data)


def _answer(conn: socket.socket) -> int:
    (size,) = struct.unpack(">i", _read_exactly(conn, 4))
    # Correlation id, no tagged fields, throttle time, error code, producer id, epoch.
    _, _, _, error, producer_id, _ = struct.unpack(">ibihqh", _read_exactly(conn, size)[:21])
    if error:
        raise ProducerIdError(f"InitProducerId failed with Kafka error code {error}")
    return int(producer_id)


def _connect(bootstrap: str) -> socket.socket:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=15)


def _take(conn: socket.socket, count: int) -> int:
    """Ask for `count` producer ids; the last one handed out."""
    conn.sendall(b"".join(_request(n) for n in range(count)))
    last = -1
    for _ in range(count):
        last = _answer(conn)
    return last


def next_producer_id(bootstrap: str) -> int:
    """The id after the one the broker hands out now (which is used up by asking)."""
    with _connect(bootstrap) as conn:
        return _take(conn, 1) + 1


def skip_producer_ids(bootstrap: str, past: int) -> int:
    """Use up producer ids until the next one the broker hands out is `past` or later; how
    many were used (one at least: asking is how the broker's position is learnt)."""
    with _connect(bootstrap) as conn:
        last, used = _take(conn, 1), 1
        if past - last > MAX_SKIP:
            raise ProducerIdError(
                f"the broker hands out id {last}, {past - last} short of {past}: "
                "not the broker that was backed up?"
            )
        while last + 1 < past:
            batch = min(_PIPELINE, past - last - 1)
            last = _take(conn, batch)
            used += batch
        return used


def plaintext_bootstrap(bootstrap: str | None) -> str | None:
    """The bootstrap servers when the clients connect in plain text (as the local broker is
    reached); None when they use TLS or SASL, which this raw request does not speak."""
    from smarteros.infra.kafka import client_config

    config = client_config(**({"bootstrap.servers": bootstrap} if bootstrap else {}))
    if str(config.get("security.protocol", "plaintext")).lower() != "plaintext":
        return None
    return str(config["bootstrap.servers"])
