"""Anthropic's Messages API through the official `anthropic` SDK."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2
from anthropic.types import ContentBlockParam, MessageParam, ToolParam

from llm.base import (
    ChatTurn,
    CompletionRequest,
    LLMError,
    Provider,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
    retry_after_seconds,
    status_error,
)

# The SDK logs every request's options, the prompt included, at DEBUG: a DEBUG root logger must
# not pass them on.
logging.getLogger("anthropic").setLevel(logging.INFO)

_MediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
_MEDIA_TYPES: dict[str, _MediaType] = {
    "image/jpeg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}


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
        calls: dict[int, _PartialCall] = {}  # tool_use blocks by index, until they stop
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
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        calls[event.index] = _PartialCall(block.id, block.name, block.input)
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield TextDelta(event.delta.text)
                    elif event.delta.type == "input_json_delta" and event.index in calls:
                        calls[event.index].fragments.append(event.delta.partial_json)
                elif event.type == "content_block_stop":
                    if event.index in calls:
                        yield calls.pop(event.index).complete()
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
        if request.tools:
            tools: list[ToolParam] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                }
                for tool in request.tools
            ]
            params["tools"] = tools
        return params

    async def close(self) -> None:
        await self._client.close()


@dataclass
class _PartialCall:
    """A tool_use block as it streams: its input's JSON in fragments."""

    id: str
    name: str
    start_input: dict[str, object]
    fragments: list[str] = field(default_factory=list)

    def complete(self) -> ToolCall:
        """The call, its input parsed; input that is no JSON object fails the reply (a retry
        samples it again) rather than running the tool without arguments."""
        text = "".join(self.fragments).strip()
        try:
            arguments = json.loads(text) if text else dict(self.start_input)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise LLMError(
                "upstream_error", "The model wrote a malformed tool call", retryable=True
            )
        return ToolCall(self.id, self.name, arguments)


@dataclass
class _Message:
    role: Literal["user", "assistant"]
    blocks: list[ContentBlockParam]

    def param(self) -> MessageParam:
        """One text block is sent as a plain string, as before images and tools."""
        content: str | list[ContentBlockParam] = self.blocks
        if not self.blocks:
            content = ""
        elif len(self.blocks) == 1 and self.blocks[0]["type"] == "text":
            content = self.blocks[0]["text"]
        if self.role == "user":
            return {"role": "user", "content": content}
        return {"role": "assistant", "content": content}

    def tool_use_ids(self) -> set[str]:
        return {block["id"] for block in self.blocks if block["type"] == "tool_use"}

    def join(self, blocks: list[ContentBlockParam]) -> None:
        """Another turn of the same role: adjacent texts joined by a blank line."""
        if blocks and self.blocks:
            last, first = self.blocks[-1], blocks[0]
            if last["type"] == "text" and first["type"] == "text":
                self.blocks[-1] = {"type": "text", "text": f"{last['text']}\n\n{first['text']}"}
                blocks = blocks[1:]
        self.blocks.extend(blocks)


def alternating_messages(turns: Sequence[ChatTurn]) -> list[MessageParam]:
    """The turns as Anthropic requires them: starting with the user and alternating, with
    consecutive turns of one role joined (their texts by a blank line), leading assistant turns
    dropped, and tool results kept only right after the assistant turn that made the calls
    (first in the user message, as the API requires)."""
    merged: list[_Message] = []
    for turn in turns:
        if not merged and turn.role == "assistant":
            continue
        if turn.role == "assistant":
            blocks = _assistant_blocks(turn)
        else:
            after = (
                merged[-1].tool_use_ids() if merged and merged[-1].role == "assistant" else set()
            )
            blocks = _user_blocks(turn, after)
        if merged and merged[-1].role == turn.role:
            merged[-1].join(blocks)
        else:
            merged.append(_Message(turn.role, blocks))
    if not merged:
        raise LLMError("bad_request", "The conversation has no message from a user")
    return [message.param() for message in merged]


def _assistant_blocks(turn: ChatTurn) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = []
    if turn.content:
        blocks.append({"type": "text", "text": turn.content})
    for call in turn.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks


def _user_blocks(turn: ChatTurn, call_ids: set[str]) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = [
        {
            "type": "tool_result",
            "tool_use_id": result.call_id,
            "content": result.content,
            "is_error": result.is_error,
        }
        for result in turn.tool_results
        if result.call_id in call_ids
    ]
    for image in turn.images:
        media_type = _MEDIA_TYPES.get(image.mime_type)
        if media_type is None:
            raise LLMError("bad_request", f"Images of type {image.mime_type} are not supported")
        data = base64.b64encode(image.data).decode()
        blocks.append(
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        )
    if turn.content:
        blocks.append({"type": "text", "text": turn.content})
    return blocks


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
