"""How many tokens one reply may use, per model family: the one table of them.

`max_output` is the most output tokens the provider documents for the model (Anthropic's models
overview, OpenAI's model pages); a connection's `max_tokens` above it is refused. `reply_budget`
is what a reply asks for when the connection sets no `max_tokens`. The client never asks for
thinking, but models with adaptive thinking on by default (Claude 5.x) or that reason by default
(OpenAI's o-series and GPT-5) spend part of `max_tokens` thinking before any text: their budget
leaves room for that. A model the table does not know keeps the platform default
(LLM_MAX_TOKENS) and MAX_TOKENS_LIMIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

# The most a connection may set for a model the table does not know.
MAX_TOKENS_LIMIT = 64_000


@dataclass(frozen=True)
class ModelFamily:
    pattern: str  # matched against the normalised model name (see model_family)
    max_output: int
    reply_budget: int
    # The chat-completions field that carries the budget: OpenAI's reasoning models refuse
    # `max_tokens` ("Use 'max_completion_tokens' instead").
    budget_field: str = "max_tokens"


_COMPLETION = "max_completion_tokens"

# First match wins, so a generation comes before the shorter name it would also match.
MODEL_FAMILIES: tuple[ModelFamily, ...] = (
    # Anthropic. Claude 5.x (Fable, Opus, Sonnet, Haiku): adaptive thinking on by default.
    ModelFamily(r"claude-(fable|opus|sonnet|haiku)-5", 128_000, 16_000),
    # Adaptive thinking when asked for; the same room in case a gateway turns it on.
    ModelFamily(r"claude-(opus-4-[678]|sonnet-4-6)", 128_000, 16_000),
    ModelFamily(r"claude-(opus|sonnet|haiku)-4-5", 64_000, 4_096),
    ModelFamily(r"claude-sonnet-4", 64_000, 4_096),  # Sonnet 4 (-4-0, -4-20250514)
    ModelFamily(r"claude-opus-4", 32_000, 4_096),  # Opus 4 and 4.1
    # OpenAI. GPT-5.x chat variants answer without reasoning and write less.
    ModelFamily(r"gpt-5(-\d+)?-chat", 16_384, 4_096),
    # OpenAI suggests reserving at least 25,000 tokens for reasoning and output.
    ModelFamily(r"gpt-5", 128_000, 25_000, _COMPLETION),
    ModelFamily(r"o1-mini", 65_536, 25_000, _COMPLETION),
    ModelFamily(r"o1(-pro)?|o3(-mini|-pro)?|o4-mini", 100_000, 25_000, _COMPLETION),
    ModelFamily(r"gpt-4-1", 32_768, 4_096),
    ModelFamily(r"gpt-4o", 16_384, 4_096),
)


def _normalised(model: str) -> str:
    """`anthropic/claude-sonnet-5.5` (a gateway's spelling) reads as `claude-sonnet-5-5`."""
    return re.sub(r"[._]", "-", model.strip().lower().rsplit("/", 1)[-1])


def model_family(model: str) -> ModelFamily | None:
    """The table's entry for `model` (any vendor prefix and version spelling), or None."""
    name = _normalised(model)
    for family in MODEL_FAMILIES:
        # At the start or after a prefix (Bedrock's "anthropic.", a fine-tune's "ft:"); not
        # followed by a digit (gpt-4-1 is not gpt-4-1106).
        if re.search(rf"(?:^|[-:])(?:{family.pattern})(?![0-9])", name):
            return family
    return None


def max_tokens_limit(model: str) -> int:
    """The most output tokens `model` may be asked for in one reply."""
    family = model_family(model)
    return family.max_output if family else MAX_TOKENS_LIMIT


def reply_budget(model: str) -> int:
    """The reply budget for `model` when its connection sets none."""
    family = model_family(model)
    return family.reply_budget if family else int(settings.LLM_MAX_TOKENS)


def budget_field(model: str) -> str:
    """The chat-completions field that carries the reply budget for `model`."""
    family = model_family(model)
    return family.budget_field if family else "max_tokens"
