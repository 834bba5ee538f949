"""Helpers shared by the provider tests."""

from __future__ import annotations

from llm.base import (
    ChatTurn,
    CompletionRequest,
    LLMError,
    LLMErrorCode,
    Provider,
    StreamEvent,
    TextDelta,
    Usage,
)
from tests.support.fake_llm import FakeLLM, FakeReply


def completion(
    *,
    model: str = "test-model",
    system: str = "You are a helpful assistant.",
    turns: list[ChatTurn] | None = None,
    max_tokens: int = 256,
    temperature: float | None = None,
) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        system=system,
        turns=turns if turns is not None else [ChatTurn("user", "Say hello.")],
        max_tokens=max_tokens,
        temperature=temperature,
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
