"""Helpers shared by the provider tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from llm.anthropic_provider import AnthropicProvider
from llm.base import (
    ChatTurn,
    CompletionRequest,
    LLMError,
    LLMErrorCode,
    Provider,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from llm.openai_provider import OpenAIProvider
from tests.support.fake_llm import FakeLLM, FakeReply


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    api_key: str
    api_path: str  # what the SDK's base URL adds to the server's root
    server_error: int  # a status the vendor answers when it fails
    make: Callable[..., Provider]

    def provider(self, server_root: str, **options: Any) -> Provider:
        return self.make(api_key=self.api_key, base_url=server_root + self.api_path, **options)


VENDORS = [
    Vendor("openai", "sk-test", "/v1", 500, OpenAIProvider),
    Vendor("anthropic", "sk-ant-test", "", 529, AnthropicProvider),
]


def completion(
    *,
    model: str = "test-model",
    system: str = "You are a helpful assistant.",
    turns: list[ChatTurn] | None = None,
    max_tokens: int = 256,
    temperature: float | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        system=system,
        turns=turns if turns is not None else [ChatTurn("user", "Say hello.")],
        max_tokens=max_tokens,
        temperature=temperature,
        tools=tools,
    )


async def collect(provider: Provider, request: CompletionRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


async def collect_until_error(
    provider: Provider, request: CompletionRequest
) -> tuple[list[str], LLMError]:
    """The deltas that arrived before the stream failed, and its error."""
    deltas: list[str] = []
    try:
        async for event in provider.stream(request):
            assert isinstance(event, TextDelta), f"unexpected {event!r} before the error"
            deltas.append(event.text)
    except LLMError as error:
        return deltas, error
    raise AssertionError("the stream did not fail")


def split(events: list[StreamEvent]) -> tuple[list[str], Usage]:
    """The text deltas and the one Usage, which must come last."""
    assert events, "no events"
    *deltas, usage = events
    assert isinstance(usage, Usage), f"the stream did not end with a Usage: {usage!r}"
    texts = []
    for event in deltas:
        assert isinstance(event, TextDelta), f"{event!r} before the end"
        texts.append(event.text)
    return texts, usage


def split_calls(events: list[StreamEvent]) -> tuple[str, list[ToolCall], Usage]:
    """The text, then the tool calls (none may come before text ends), then the one Usage."""
    assert events, "no events"
    *body, usage = events
    assert isinstance(usage, Usage), f"the stream did not end with a Usage: {usage!r}"
    texts = [event.text for event in body if isinstance(event, TextDelta)]
    calls = [event for event in body if isinstance(event, ToolCall)]
    assert body == [*map(TextDelta, texts), *calls], "tool calls come after the text"
    return "".join(texts), calls, usage


def image_bytes(size: tuple[int, int], *, image_format: str = "PNG", mode: str = "RGB") -> bytes:
    """An image made here: a gradient, so that encoders cannot shrink it to nothing; with an
    alpha channel, transparent at the top."""
    gradient = Image.linear_gradient("L").resize(size)
    image = gradient.convert(mode)
    if "A" in mode:
        image.putalpha(gradient)
    out = io.BytesIO()
    image.save(out, image_format)
    return out.getvalue()


async def expect_error(
    fake_llm: FakeLLM, provider: Provider, reply: FakeReply, code: LLMErrorCode, retryable: bool
) -> None:
    """The vendor's error answer becomes this LLMError, and the SDK does not retry it itself."""
    fake_llm.script(reply)
    deltas, error = await collect_until_error(provider, completion())
    assert deltas == []
    assert (error.code, error.retryable) == (code, retryable)
    assert error.retry_after == reply.retry_after
    assert len(fake_llm.requests) == 1, "the SDK must not retry on its own"
