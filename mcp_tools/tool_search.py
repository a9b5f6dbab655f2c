"""Finding a tool by what it does, ranked by how the tenant itself uses its tools.

A tool matches when its name, title or description holds a word of the query (or, for a word
of 3 letters or more, a word starting with it); matches are
ranked by the tenant's successful calls over USAGE_WINDOW_DAYS (from the telemetry store), then
by how well the words match, then by name. Without the telemetry store the ranking falls back
to the words alone and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mcp_tools.registry import Operation

USAGE_WINDOW_DAYS = 30
SEARCH_TOOL = "tools_search"
# A word in the name counts more than one in the title, and that more than one in the text.
WEIGHTS = (("name", 3), ("title", 2), ("description", 1))


@dataclass(frozen=True)
class Usage:
    calls: int
    errors: int

    @property
    def successful(self) -> int:
        return self.calls - self.errors


@dataclass(frozen=True)
class Match:
    op: Operation
    words: int
    usage: Usage


# Words that would match nearly every tool.
STOPWORDS = frozenset(
    ["a", "an", "and", "by", "for", "from", "in", "is", "it", "of", "on", "or", "the", "to", "with"]
)
# A shorter query word must be a whole word of the tool's text; a longer one may start one.
PREFIX_MIN = 3


def words(text: str) -> list[str]:
    """Lowercased words; `_` and punctuation split them (`shopify_sync` is two)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def query_words(query: str) -> list[str]:
    return [w for w in dict.fromkeys(words(query)) if w not in STOPWORDS]


def _matches(word: str, field: set[str]) -> bool:
    if word in field:
        return True
    return len(word) >= PREFIX_MIN and any(w.startswith(word) for w in field)


def words_score(op: Operation, wanted: list[str]) -> int:
    fields = {
        "name": set(words(op.name)),
        "title": set(words(op.title)),
        "description": set(words(op.description)),
    }
    return sum(weight for word in wanted for key, weight in WEIGHTS if _matches(word, fields[key]))


def tools_rank(
    ops: list[Operation], query: str, usage: dict[str, Usage], limit: int
) -> list[Match]:
    wanted = query_words(query)
    matches = [
        Match(op, score, usage.get(op.name, Usage(0, 0)))
        for op in ops
        if (score := words_score(op, wanted)) > 0
    ]
    matches.sort(key=lambda m: (-m.usage.successful, -m.words, m.op.name))
    return matches[:limit]


def tools_top(ops: list[Operation], usage: dict[str, Usage], count: int) -> list[Operation]:
    """For clients with small context windows: the `count` tools the tenant used most
    successfully (over the usage window), and `tools_search` to find the others."""
    used = sorted(
        (op for op in ops if usage.get(op.name, Usage(0, 0)).successful > 0),
        key=lambda op: (-usage[op.name].successful, op.name),
    )
    search = [op for op in ops if op.name == SEARCH_TOOL]
    return [*search, *[op for op in used if op.name != SEARCH_TOOL][:count]]


def tenant_usage(tenant_slug: str) -> dict[str, Usage] | None:
    """Each operation's calls and errors over the usage window; None if ClickHouse does not
    answer."""
    from telemetry.queries import TelemetryUnavailable, operation_stats

    try:
        rows = operation_stats(tenant=tenant_slug, window_minutes=USAGE_WINDOW_DAYS * 1440)
    except TelemetryUnavailable:
        return None
    return {r["operation"]: Usage(r["calls"], r["errors"]) for r in rows}
