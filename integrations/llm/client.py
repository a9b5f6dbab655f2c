"""Clients of the two kinds of LLM endpoint, each mapping the provider's errors to one model.

Neither retries by itself: a failed reply is an effect's attempt, and the effects machinery waits
and retries by what the error says (see integrations/llm/errors.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import anthropic

from integrations.http import answer_reason, egress_refused, request_response
from integrations.llm.errors import (
    LlmCredentialsRejected,
    LlmEmptyReply,
    LlmInvalidRequest,
    LlmOverloaded,
    LlmRateLimited,
)
from integrations.llm.models import budget_field
from smarteros.errors import OperationError, UpstreamError
from smarteros.infra.egress import EgressRefused, ResponseTooLarge, egress_client

ANTHROPIC = "anthropic"
OPENAI_COMPATIBLE = "openai_compatible"
PROVIDERS = (ANTHROPIC, OPENAI_COMPATIBLE)
# How error messages name each provider.
PROVIDER_NAMES = {ANTHROPIC: "Anthropic", OPENAI_COMPATIBLE: "the OpenAI-compatible LLM endpoint"}
# The setting an operator corrects when the endpoint may not be reached.
URL_SETTING = "base_url"


@dataclass(frozen=True)
class LlmReply:
    text: str
    model: str
    provider: str
    tokens_in: int
    tokens_out: int


def reply_text_check(provider: str, text: str, stop: str | None, max_tokens: int) -> str:
    """The reply's text; LlmEmptyReply saying why when there is none (`stop`: Anthropic's
    stop_reason or OpenAI's finish_reason)."""
    if text.strip():
        return text.strip()
    if stop in ("max_tokens", "length"):
        why = (
            f"used its whole budget of {max_tokens} tokens before writing any text (thinking "
            "counts against it): raise the reply budget or turn thinking down"
        )
    elif stop in ("refusal", "content_filter"):
        why = f"refused to answer ({stop})"
    else:
        why = f"answered without any text (stop reason {stop or 'none given'})"
    raise LlmEmptyReply(f"{PROVIDER_NAMES.get(provider, provider)}: the model {why}")


@dataclass(frozen=True)
class LlmRequest:
    system: str
    messages: list[dict[str, str]]  # alternating user / assistant, first and last the user's
    max_tokens: int


def _retry_after(headers: Any, default: int) -> int:
    try:
        return max(1, int(float(headers.get("retry-after"))))
    except (TypeError, ValueError):
        return default


def llm_error(provider: str, status: int, headers: Any, kind: str) -> OperationError:
    """The one error for a provider's HTTP answer `status` (>= 400); `kind` is the error type
    the provider's documented error body names (never its free text)."""
    name = PROVIDER_NAMES[provider]
    detail = f"{name} answered {answer_reason(status)}" + (f" ({kind})" if kind else "")
    if status in (401, 403):
        return LlmCredentialsRejected(
            f"{detail}; the tenant's LLM API key is refused: a tenant admin replaces the "
            "api_key of its llm connection on the console's Integrations page"
        )
    if status == 429:
        seconds = _retry_after(headers, 60)
        return LlmRateLimited(f"{detail}; retry after {seconds}s", retry_after=seconds)
    if status in (529, 503):
        return LlmOverloaded(
            f"{detail}; the provider is overloaded, retry later",
            retry_after=_retry_after(headers, 0) or None,
        )
    if 400 <= status < 500:
        return LlmInvalidRequest(f"{detail}; check the tenant's LLM model and limits")
    return UpstreamError(detail)


def _error_kind(body: Any) -> str:
    """The error's type from a documented error body, if it is a short identifier: Anthropic
    {"type": "error", "error": {"type", "message"}}, OpenAI {"error": {"message", "type",
    "code"}}. Messages and other bodies are not repeated (they may be another service's)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        kind = body["error"].get("type") or body["error"].get("code") or ""
        if isinstance(kind, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", kind):
            return kind
    return ""


@dataclass(frozen=True)
class AnthropicLlm:
    """Anthropic's Messages API through the official SDK."""

    api_key: str
    model: str
    base_url: str = ""
    timeout: float = 60.0

    def reply(self, request: LlmRequest) -> LlmReply:
        # The SDK sends through the egress gate's client (shared: never closed here).
        client = anthropic.Anthropic(
            api_key=self.api_key,
            base_url=self.base_url or None,
            max_retries=0,
            timeout=self.timeout,
            http_client=egress_client(),
        )
        try:
            message = client.messages.create(
                model=self.model,
                max_tokens=request.max_tokens,
                system=request.system,
                messages=request.messages,  # type: ignore[arg-type]
            )
        except anthropic.APIStatusError as exc:
            raise llm_error(
                ANTHROPIC, exc.status_code, exc.response.headers, _error_kind(exc.body)
            ) from None
        except anthropic.APITimeoutError:
            raise UpstreamError(f"Anthropic did not answer within {self.timeout}s") from None
        except anthropic.APIConnectionError as exc:
            # The SDK wraps whatever the transport raised: a refusal of the gate stays one.
            if isinstance(exc.__cause__, EgressRefused):
                raise egress_refused("Anthropic", URL_SETTING, exc.__cause__) from None
            if isinstance(exc.__cause__, ResponseTooLarge):
                raise UpstreamError(f"Anthropic answered too much: {exc.__cause__}") from None
            raise UpstreamError(f"Anthropic is unreachable: {type(exc).__name__}") from None
        text = "".join(block.text for block in message.content if block.type == "text")
        return LlmReply(
            text=reply_text_check(ANTHROPIC, text, message.stop_reason, request.max_tokens),
            model=message.model,
            provider=ANTHROPIC,
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
        )


@dataclass(frozen=True)
class OpenAICompatibleLlm:
    """A chat-completions endpoint (`{base_url}/chat/completions`, base URL ending in /v1 as
    OpenAI's does): OpenAI, a gateway, vLLM, Ollama..."""

    api_key: str
    model: str
    base_url: str
    timeout: float = 60.0

    def reply(self, request: LlmRequest) -> LlmReply:
        url = f"{self.base_url.rstrip('/')}/chat/completions"
        response = request_response(
            PROVIDER_NAMES[OPENAI_COMPATIBLE],
            "POST",
            url,
            url_setting=URL_SETTING,
            headers={"Authorization": f"Bearer {self.api_key}"},
            json={
                "model": self.model,
                budget_field(self.model): request.max_tokens,
                "messages": [{"role": "system", "content": request.system}, *request.messages],
            },
            timeout=self.timeout,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise llm_error(
                OPENAI_COMPATIBLE, response.status_code, response.headers, _error_kind(body)
            )
        try:
            choice = body["choices"][0]["message"]
            usage = body.get("usage") or {}
            text = str(choice.get("content") or "")
            finish = body["choices"][0].get("finish_reason")
            return LlmReply(
                text=reply_text_check(OPENAI_COMPATIBLE, text, finish, request.max_tokens),
                model=str(body.get("model") or self.model),
                provider=OPENAI_COMPATIBLE,
                tokens_in=int(usage.get("prompt_tokens", 0)),
                tokens_out=int(usage.get("completion_tokens", 0)),
            )
        except (TypeError, KeyError, IndexError, AttributeError, ValueError):
            raise UpstreamError(
                "the OpenAI-compatible LLM endpoint answered without choices[0].message"
            ) from None
