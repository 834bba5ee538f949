"""OpenAI Chat Completions, and any server that speaks them (Ollama, vLLM, llama.cpp,
OpenRouter, Gemini's OpenAI endpoint), through the official `openai` SDK."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.completion_usage import CompletionUsage

from llm.base import (
    CompletionRequest,
    LLMError,
    Provider,
    StreamEvent,
    TextDelta,
    Usage,
    retry_after_seconds,
    status_error,
)
from llm.tokens import estimate_prompt_tokens, estimate_tokens

# The SDK refuses an empty key; servers without authentication (a local Ollama) ignore it.
NO_API_KEY = "no-key"

_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
# How OpenAI, vLLM, llama.cpp, OpenRouter and Gemini word a prompt that does not fit.
_CONTEXT_MESSAGE = re.compile(
    r"context[ _]?(length|size|window)|maximum context|prompt is too long"
    r"|exceeds the maximum number of tokens",
    re.IGNORECASE,
)


class OpenAIProvider(Provider):
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        kind: Literal["openai", "openai_compatible"] = "openai",
        timeout: float = 60.0,
        stall_timeout: float | None = None,
    ) -> None:
        """`timeout` bounds connecting and sending; `stall_timeout` (default: `timeout`) bounds
        the wait for the response and for every chunk of the stream after it."""
        self.name = kind
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_API_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(timeout, read=stall_timeout or timeout),
        )

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent]:
        try:
            chunks = await self._client.chat.completions.create(**self._params(request))
        except openai.APIConnectionError as exc:
            raise _connection_error(exc, started=False) from exc
        except openai.APIError as exc:
            raise _api_error(exc) from exc
        text: list[str] = []
        usage: CompletionUsage | None = None
        finished = False
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    finished = finished or choice.finish_reason is not None
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
        except openai.APIConnectionError as exc:
            raise _connection_error(exc, started=True) from exc
        except openai.APIError as exc:
            raise _api_error(exc) from exc
        except ValueError as exc:
            raise LLMError("upstream_error", "The stream was malformed", retryable=True) from exc
        finally:
            await chunks.close()
        if not finished:
            raise LLMError("upstream_error", "The stream ended before the reply", retryable=True)
        if usage is not None:
            yield Usage(usage.prompt_tokens, usage.completion_tokens)
        else:
            # Some compatible servers ignore stream_options and report no usage.
            yield Usage(
                estimate_prompt_tokens(request.system, request.turns),
                estimate_tokens("".join(text)),
            )

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        messages: list[ChatCompletionMessageParam] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        for turn in request.turns:
            if turn.role == "user":
                messages.append({"role": "user", "content": turn.content})
            else:
                messages.append({"role": "assistant", "content": turn.content})
        # OpenAI's current models refuse max_tokens; compatible servers mostly know only it.
        limit = "max_completion_tokens" if self.name == "openai" else "max_tokens"
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            limit: request.max_tokens,
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    async def close(self) -> None:
        await self._client.close()


def _connection_error(exc: openai.APIConnectionError, *, started: bool) -> LLMError:
    if isinstance(exc, openai.APITimeoutError):
        message = "The stream stalled" if started else "The provider did not answer"
        return LLMError("timeout", message, retryable=True)
    if started:
        return LLMError("connection_lost", "The stream broke off", retryable=True)
    return LLMError("upstream_error", "Cannot reach the provider", retryable=True)


def _api_error(exc: openai.APIError) -> LLMError:
    body = exc.body
    vendor_message = body.get("message") if isinstance(body, dict) else None
    message = vendor_message if isinstance(vendor_message, str) else exc.message
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = retry_after_seconds(exc.response.headers)
    else:
        # An error event inside a stream that had started well: no status of its own.
        status = 500
        retry_after = None
    if status == 429 and exc.code == "insufficient_quota":
        return LLMError("rate_limited", message)
    if 400 <= status < 500 and (
        exc.code in _CONTEXT_CODES or exc.type in _CONTEXT_CODES or _CONTEXT_MESSAGE.search(message)
    ):
        return LLMError("context_too_long", message)
    return status_error(status, message, retry_after=retry_after)
