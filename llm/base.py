"""The one small interface every LLM provider implements.

A provider turns a `CompletionRequest` into a stream of `TextDelta`s and `ToolCall`s followed by
one `Usage` (the token counts as the vendor reported them). A turn may carry images (the bytes,
never a URL for the vendor to fetch), the assistant's tool calls, and the results of those calls.
Every failure is an `LLMError` whose `code` a client can show and whose `retryable` says whether
trying again can help.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image the model sees, already within the vendor's limits (see `llm.images`)."""

    data: bytes = field(repr=False)
    mime_type: str  # image/jpeg, image/png, image/webp or image/gif


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for a tool to run; `arguments` as the model wrote them (parsed JSON)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()  # user turns
    tool_calls: tuple[ToolCall, ...] = ()  # assistant turns: the calls it made after `content`
    tool_results: tuple[ToolResult, ...] = ()  # user turns: answers to the turn before's calls


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str  # the vendor's model name
    system: str
    turns: list[ChatTurn]  # oldest first; the last one is the user's new message
    max_tokens: int
    temperature: float | None = None
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


# A ToolCall is yielded whole, once the model has finished writing its arguments; a stream that
# yields tool calls ends (with its Usage) for the caller to run them and ask again.
StreamEvent = TextDelta | ToolCall | Usage

# Codes a client can show; the AI participant passes them on in ai_reply_failed.
LLMErrorCode = Literal[
    "rate_limited",  # 429 from the vendor
    "overloaded",  # Anthropic overloaded_error, 529, 503
    "upstream_error",  # other 5xx, malformed stream
    "timeout",  # no answer or a stalled stream
    "connection_lost",  # the connection dropped mid-stream
    "context_too_long",  # the prompt does not fit the model
    "auth_failed",  # bad or missing API key
    "bad_request",  # the vendor refused the request for another reason
    "not_configured",  # no provider or model configured
]


@dataclass(slots=True)
class LLMError(Exception):
    code: LLMErrorCode
    message: str
    retryable: bool = False
    retry_after: float | None = field(default=None)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def status_error(status: int, message: str, *, retry_after: float | None = None) -> LLMError:
    """The error an HTTP status means when the vendor's body names nothing more specific."""
    if status == 429:
        return LLMError("rate_limited", message, retryable=True, retry_after=retry_after)
    if status in (401, 403):
        return LLMError("auth_failed", message)
    if status == 408:
        return LLMError("timeout", message, retryable=True)
    if status in (503, 529):
        return LLMError("overloaded", message, retryable=True, retry_after=retry_after)
    if status >= 500:
        return LLMError("upstream_error", message, retryable=True, retry_after=retry_after)
    return LLMError("bad_request", message)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the vendor asks us to wait: `retry-after-ms`, or `retry-after` in seconds or as
    an HTTP date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    return None


class Provider(ABC):
    name: str

    @abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent]:
        """Yield text deltas as they arrive, each tool call once its arguments are complete
        (parsed; a malformed one is an `upstream_error`), then exactly one Usage. Raise LLMError
        on failure. Closing the iterator (aclose) must stop the upstream request promptly."""

    async def close(self) -> None:
        """Release HTTP connections."""
