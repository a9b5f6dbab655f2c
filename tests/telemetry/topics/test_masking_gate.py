"""Masking is a gate, not a habit: every place that reads a Kafka message's content goes through
`records.message_record` (which masks) or is listed here as never showing it to a person; every
masker comes from `Masker.for_grant`; every page and socket action of the topic viewer is either
one the masking corpus reads back (test_masking_corpus) or shows no message content. A new
reader, page or action fails here until it is classified."""

from __future__ import annotations

import ast
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[3]
SKIPPED_DIRS = {".venv", "node_modules", "tests", "bench", "scripts", "migrations", ".git", ".run"}

# The one function that turns a message into what an operator sees, masked.
MASKING_READER = ("telemetry/topics/records.py", "message_record")
# Readers of message content that never show it to a person, and why.
NOT_SHOWN = {
    ("smarteros/events/backup.py", "_record"): "copies raw bytes into an owner-only backup",
    ("smarteros/events/record_files.py", "frame_message"): "backup file framing, raw bytes",
    ("smarteros/events/record_files.py", "read_back"): "restore reads a backup file back",
    ("smarteros/events/consumers.py", "parse"): "consumer groups parse events to handle them",
    ("smarteros/events/dead_letters.py", "_envelope"): "lists ids and types, replays via outbox",
    ("smarteros/events/failures.py", "dead_letter"): "copies a failed event to its dead letters",
    ("telemetry/sink.py", "run"): "telemetry records go to ClickHouse, no payloads",
    ("telemetry/recording.py", "_on_delivery"): "a delivery report of our own record",
    ("telemetry/topics/actions.py", "_replay"): "re-produces a dead letter as it is",
}
# Pages of the topic viewer (URL names) and websocket actions: the ones that show messages are
# read back by the masking corpus; the others show none.
SHOWS_MESSAGES = {"topic-message", "topic-export", "ws:browse", "ws:live"}
SHOWS_NONE = {
    "topics": "topic names, sizes and lag",
    "topic-view": "the page shell; messages arrive over the socket",
    "topic-replay": "answers where the replayed copy went",
    "topic-replay-all": "answers how many were replayed, and the offsets it could not replay",
    "ws:pause": "no content",
    "ws:resume": "sends what live buffered, built by message_record",
    "ws:stop": "no content",
}


def source_files() -> list[Path]:
    return [
        path for path in ROOT.rglob("*.py") if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
    ]


def _is_message_read(node: ast.AST) -> bool:
    """`message.value()` / `msg.value()`: the content of a confluent-kafka message."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr != "value" or node.args or node.keywords:
        return False
    receiver = ast.unparse(node.func.value).lower()
    return "message" in receiver or "msg" in receiver


def message_readers() -> set[tuple[str, str]]:
    found = set()
    for path in source_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _is_message_read(node) for node in ast.walk(function)
            ):
                found.add((str(path.relative_to(ROOT)), function.name))
    return found


def test_every_reader_of_message_content_masks_or_never_shows_it() -> None:
    readers = message_readers()
    assert MASKING_READER in readers
    unclassified = readers - {MASKING_READER} - set(NOT_SHOWN)
    assert not unclassified, f"read message content without masking: {sorted(unclassified)}"
    assert not set(NOT_SHOWN) - readers, "NOT_SHOWN lists readers that are gone"


def test_maskers_are_made_only_from_a_grant_and_records_only_by_message_record() -> None:
    made, recorded = [], []
    for path in source_files():
        relative = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id == "Masker":
                made.append(relative)
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr
                in (
                    "envelope_value",
                    "headers",
                )
                and "masker" in ast.unparse(node.func.value)
            ):
                recorded.append(relative)
    # Masker(...) only inside Masker.for_grant (as `cls(...)`): the tenant's choice is applied.
    assert made == [], f"Masker built by hand in {made}; use Masker.for_grant(grant)"
    assert set(recorded) == {MASKING_READER[0]}


def _topic_url_names(patterns: list[URLPattern | URLResolver]) -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            names |= _topic_url_names(pattern.url_patterns)
        elif str(pattern.pattern).startswith("topics/") and pattern.name:
            names.add(pattern.name)
    return names


def test_every_topic_page_and_socket_action_is_classified() -> None:
    from telemetry.topics.consumers import ACTIONS

    surfaces = _topic_url_names(get_resolver().url_patterns) | {f"ws:{a}" for a in ACTIONS}
    assert surfaces == SHOWS_MESSAGES | set(SHOWS_NONE)
