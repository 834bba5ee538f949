"""OpenAI Chat Completions, and any server that speaks them (Ollama, vLLM, llama.cpp,
OpenRouter, Gemini's OpenAI endpoint), through the official `openai` SDK."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai.types.chat import (
    ChatCompletionContentPartParam,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from openai.types.completion_usage import CompletionUsage

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
from llm.tokens import estimate_prompt_tokens, estimate_tokens, estimate_tool_call_tokens

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
            raise connection_error(exc, started=False) from exc
        except openai.APIError as exc:
            raise api_error(exc) from exc
        text: list[str] = []
        calls: dict[int, _PartialCall] = {}
        finished: list[ToolCall] | None = None  # the tool calls, once the choice has finished
        usage: CompletionUsage | None = None
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.index != 0 or finished is not None:
                        continue
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
                    for delta in choice.delta.tool_calls or ():
                        calls.setdefault(delta.index, _PartialCall()).add(delta)
                    if choice.finish_reason is not None:  # "tool_calls" among others
                        finished = [calls[index].complete(index) for index in sorted(calls)]
                        for call in finished:
                            yield call
        except openai.APIConnectionError as exc:
            raise connection_error(exc, started=True) from exc
        except openai.APIError as exc:
            raise api_error(exc) from exc
        except ValueError as exc:
            raise LLMError("upstream_error", "The stream was malformed", retryable=True) from exc
        finally:
            await chunks.close()
        if finished is None:
            raise LLMError("upstream_error", "The stream ended before the reply", retryable=True)
        if usage is not None:
            yield Usage(usage.prompt_tokens, usage.completion_tokens)
        else:
            # Some compatible servers ignore stream_options and report no usage.
            yield Usage(
                estimate_prompt_tokens(request.system, request.turns, request.tools),
                estimate_tokens("".join(text))
                + sum(estimate_tool_call_tokens(call) for call in finished),
            )

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        messages: list[ChatCompletionMessageParam] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        for turn in request.turns:
            messages.extend(_messages(turn))
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
        if request.tools:
            tools: list[ChatCompletionToolParam] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
            params["tools"] = tools
        return params

    async def close(self) -> None:
        await self._client.close()


def _messages(turn: ChatTurn) -> list[ChatCompletionMessageParam]:
    """A turn's messages: an assistant's text and tool calls; a user's tool results (a message
    each, right after the calls), then their text and images."""
    if turn.role == "assistant":
        if not turn.tool_calls:
            return [{"role": "assistant", "content": turn.content}]
        calls: list[ChatCompletionMessageToolCallParam] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in turn.tool_calls
        ]
        return [{"role": "assistant", "content": turn.content or None, "tool_calls": calls}]
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "tool",
            "tool_call_id": result.call_id,
            # The API has no error flag: the model reads it from the text.
            "content": f"Error: {result.content}" if result.is_error else result.content,
        }
        for result in turn.tool_results
    ]
    if turn.images:
        parts: list[ChatCompletionContentPartParam] = []
        if turn.content:
            parts.append({"type": "text", "text": turn.content})
        for image in turn.images:
            url = f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        messages.append({"role": "user", "content": parts})
    elif turn.content or not turn.tool_results:
        messages.append({"role": "user", "content": turn.content})
    return messages


@dataclass
class _PartialCall:
    """A tool call as its deltas arrive: the id and name first, the arguments in fragments."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def add(self, delta: ChoiceDeltaToolCall) -> None:
        self.id = delta.id or self.id
        if delta.function is not None:
            self.name = delta.function.name or self.name
            self.arguments.append(delta.function.arguments or "")

    def complete(self, index: int) -> ToolCall:
        """The call, its arguments parsed; a model that wrote no JSON object fails the reply
        (a retry samples it again) rather than running the tool without arguments."""
        text = "".join(self.arguments).strip()
        try:
            arguments = json.loads(text) if text else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict) or not self.name:
            raise LLMError(
                "upstream_error", "The model wrote a malformed tool call", retryable=True
            )
        # Some compatible servers send no id: one unique within the reply does.
        return ToolCall(self.id or f"call_{index}", self.name, arguments)


def connection_error(exc: openai.APIConnectionError, *, started: bool) -> LLMError:
    """What a failed connection means, before the answer (`started` False) or during it."""
    if isinstance(exc, openai.APITimeoutError):
        message = "The stream stalled" if started else "The provider did not answer"
        return LLMError("timeout", message, retryable=True)
    if started:
        return LLMError("connection_lost", "The stream broke off", retryable=True)
    return LLMError("upstream_error", "Cannot reach the provider", retryable=True)


def api_error(exc: openai.APIError) -> LLMError:
    """What the vendor's error answer (or an error event inside a stream) means."""
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
