"""Anthropic's Messages API through the official `anthropic` SDK."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2
from anthropic.types import MessageParam

from llm.base import (
    ChatTurn,
    CompletionRequest,
    LLMError,
    Provider,
    StreamEvent,
    TextDelta,
    Usage,
    retry_after_seconds,
    status_error,
)

# The SDK logs every request's options, the prompt included, at DEBUG: a DEBUG root logger must
# not pass them on.
logging.getLogger("anthropic").setLevel(logging.INFO)


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 60.0,
        stall_timeout: float | None = None,
    ) -> None:
        """`timeout` bounds connecting and sending; `stall_timeout` (default: `timeout`) bounds
        the wait for the response and for every event of the stream after it."""
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=anthropic.Timeout(timeout, read=stall_timeout or timeout),
        )

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent]:
        params = self._params(request)
        try:
            events = await self._client.messages.create(**params)
        except anthropic.APITimeoutError as exc:
            raise LLMError("timeout", "The provider did not answer", retryable=True) from exc
        except anthropic.APIConnectionError as exc:
            raise LLMError("upstream_error", "Cannot reach the provider", retryable=True) from exc
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        input_tokens = output_tokens = 0
        stopped = False
        try:
            async for event in events:
                if event.type == "message_start":
                    usage = event.message.usage
                    input_tokens = (
                        usage.input_tokens
                        + (usage.cache_creation_input_tokens or 0)
                        + (usage.cache_read_input_tokens or 0)
                    )
                    output_tokens = usage.output_tokens
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield TextDelta(event.delta.text)
                elif event.type == "message_delta":
                    # Counts in message_delta are cumulative, not increments.
                    output_tokens = event.usage.output_tokens
                    if event.usage.input_tokens is not None:
                        input_tokens = (
                            event.usage.input_tokens
                            + (event.usage.cache_creation_input_tokens or 0)
                            + (event.usage.cache_read_input_tokens or 0)
                        )
                elif event.type == "message_stop":
                    stopped = True
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        # The SDK passes transport errors inside a stream through unwrapped.
        except httpx2.TimeoutException as exc:
            raise LLMError("timeout", "The stream stalled", retryable=True) from exc
        except httpx2.TransportError as exc:
            raise LLMError("connection_lost", "The stream broke off", retryable=True) from exc
        except ValueError as exc:
            raise LLMError("upstream_error", "The stream was malformed", retryable=True) from exc
        finally:
            await events.close()
        if not stopped:
            raise LLMError("upstream_error", "The stream ended before the reply", retryable=True)
        yield Usage(input_tokens, output_tokens)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": alternating_messages(request.turns),
            "max_tokens": request.max_tokens,
            "stream": True,
        }
        if request.system:
            params["system"] = request.system
        if request.temperature is not None:
            # The SDK dropped the argument; the API still takes it on the models that allow it.
            params["extra_body"] = {"temperature": request.temperature}
        return params

    async def close(self) -> None:
        await self._client.close()


def alternating_messages(turns: list[ChatTurn]) -> list[MessageParam]:
    """The turns as Anthropic requires them: starting with the user and alternating, with
    consecutive turns of one role joined by a blank line and leading assistant turns dropped."""
    merged: list[ChatTurn] = []
    for turn in turns:
        if not merged and turn.role == "assistant":
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = ChatTurn(turn.role, f"{merged[-1].content}\n\n{turn.content}")
        else:
            merged.append(turn)
    if not merged:
        raise LLMError("bad_request", "The conversation has no message from a user")
    messages: list[MessageParam] = []
    for turn in merged:
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.content})
        else:
            messages.append({"role": "assistant", "content": turn.content})
    return messages


def _status_error(exc: anthropic.APIStatusError) -> LLMError:
    message = exc.api_message or exc.message
    retry_after = retry_after_seconds(exc.response.headers)
    match exc.type:
        case "overloaded_error":
            return LLMError("overloaded", message, retryable=True, retry_after=retry_after)
        case "rate_limit_error":
            return LLMError("rate_limited", message, retryable=True, retry_after=retry_after)
        case "authentication_error" | "permission_error":
            return LLMError("auth_failed", message)
        case "request_too_large":
            return LLMError("context_too_long", message)
        case "invalid_request_error" if "prompt is too long" in message.lower():
            return LLMError("context_too_long", message)
        case "invalid_request_error" | "not_found_error" | "billing_error":
            return LLMError("bad_request", message)
        case "timeout_error":
            return LLMError("timeout", message, retryable=True)
        case "api_error":
            return LLMError("upstream_error", message, retryable=True, retry_after=retry_after)
    # An error event of an unknown type arrives with the stream's own status, 200.
    status = exc.status_code if exc.status_code >= 400 else 500
    return status_error(status, message, retry_after=retry_after)
