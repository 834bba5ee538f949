"""AnthropicProvider through the real `anthropic` SDK against the fake vendor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from llm.anthropic_provider import AnthropicProvider, alternating_messages
from llm.base import (
    ChatTurn,
    ImagePart,
    LLMError,
    LLMErrorCode,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from tests.llm.support import collect, collect_until_error, completion, expect_error, split
from tests.support.fake_llm import FakeLLM, FakeReply, FakeToolCall


@pytest.fixture
async def provider(fake_llm: FakeLLM) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(api_key="sk-ant-test", base_url=fake_llm.base_url, timeout=5)
    yield provider
    await provider.close()


async def test_text_streams_as_several_deltas_then_cumulative_usage(
    fake_llm: FakeLLM, provider: AnthropicProvider
) -> None:
    # message_start reports 1 output token, message_delta the cumulative 9: 9 is the answer.
    fake_llm.script(FakeReply(text="Hello there, human!", input_tokens=31, output_tokens=9))
    deltas, usage = split(await collect(provider, completion()))
    assert "".join(deltas) == "Hello there, human!"
    assert len(deltas) == 7
    assert usage == Usage(input_tokens=31, output_tokens=9)


async def test_ping_events_are_ignored(fake_llm: FakeLLM, provider: AnthropicProvider) -> None:
    fake_llm.script(FakeReply(pings=True), FakeReply(pings=False))
    with_pings = await collect(provider, completion())
    without_pings = await collect(provider, completion())
    assert with_pings == without_pings


async def test_request_carries_the_exact_wire_fields(
    fake_llm: FakeLLM, provider: AnthropicProvider
) -> None:
    turns = [
        ChatTurn("user", "Hi"),
        ChatTurn("assistant", "Hello! How can I help?"),
        ChatTurn("user", "Tell me a joke."),
    ]
    request = completion(model="claude-haiku-4-5", system="Be brief.", turns=turns, temperature=0.3)
    await collect(provider, request)
    [recorded] = fake_llm.requests
    assert recorded.path == "/v1/messages"
    # This SDK sends the API key as a bearer token (older ones used x-api-key).
    assert recorded.headers["authorization"] == "Bearer sk-ant-test"
    assert recorded.headers["anthropic-version"]
    assert recorded.json == {
        "model": "claude-haiku-4-5",
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke."},
        ],
        "max_tokens": 256,
        "temperature": 0.3,
        "stream": True,
    }


async def test_no_system_and_no_temperature_are_left_out(
    fake_llm: FakeLLM, provider: AnthropicProvider
) -> None:
    await collect(provider, completion(system=""))
    body = fake_llm.requests[0].json
    assert "system" not in body
    assert "temperature" not in body
    assert body["max_tokens"] == 256


async def test_turns_are_made_to_alternate_starting_with_the_user(
    fake_llm: FakeLLM, provider: AnthropicProvider
) -> None:
    turns = [
        ChatTurn("assistant", "Welcome!"),
        ChatTurn("user", "a"),
        ChatTurn("user", "b"),
        ChatTurn("assistant", "c"),
        ChatTurn("assistant", "d"),
        ChatTurn("user", "e"),
    ]
    await collect(provider, completion(turns=turns))
    assert fake_llm.requests[0].json["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c\n\nd"},
        {"role": "user", "content": "e"},
    ]


def test_a_conversation_without_a_user_turn_is_refused() -> None:
    with pytest.raises(LLMError) as caught:
        alternating_messages([ChatTurn("assistant", "Welcome!")])
    assert caught.value.code == "bad_request"


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (FakeReply(status=529), "overloaded", True),
        (FakeReply(status=529, error_type="overloaded_error", retry_after=2), "overloaded", True),
        (FakeReply(status=429, retry_after=12), "rate_limited", True),
        (FakeReply(status=500), "upstream_error", True),
        (FakeReply(status=503, error_type="api_error"), "upstream_error", True),
        (FakeReply(status=400, error_type="context_length_exceeded"), "context_too_long", False),
        (FakeReply(status=413), "context_too_long", False),
        (FakeReply(status=400), "bad_request", False),
        (FakeReply(status=404), "bad_request", False),
        (FakeReply(status=401), "auth_failed", False),
        (FakeReply(status=403), "auth_failed", False),
    ],
)
async def test_error_statuses_map_to_llm_errors(
    fake_llm: FakeLLM,
    provider: AnthropicProvider,
    reply: FakeReply,
    code: LLMErrorCode,
    retryable: bool,
) -> None:
    await expect_error(fake_llm, provider, reply, code, retryable)


async def test_vendor_message_is_passed_on(fake_llm: FakeLLM, provider: AnthropicProvider) -> None:
    fake_llm.script(FakeReply(status=529))
    _, error = await collect_until_error(provider, completion())
    assert error.message == "Overloaded"


@pytest.mark.parametrize(
    ("error_type", "code"),
    [("overloaded_error", "overloaded"), ("api_error", "upstream_error")],
)
async def test_error_event_in_the_stream(
    fake_llm: FakeLLM, provider: AnthropicProvider, error_type: str, code: LLMErrorCode
) -> None:
    fake_llm.script(
        FakeReply(text="abcdefghijkl", chunk_size=2, fail_after_chunks=2, error_type=error_type)
    )
    deltas, error = await collect_until_error(provider, completion())
    assert deltas == ["ab", "cd"]
    assert (error.code, error.retryable) == (code, True)


async def test_images_tools_calls_and_results_in_the_wire_format(
    fake_llm: FakeLLM, provider: AnthropicProvider
) -> None:
    image = ImagePart(b"\xff\xd8 fake jpeg", "image/jpeg")
    draw = ToolSpec("draw", "Draw a picture.", {"type": "object", "properties": {}})
    turns = [
        ChatTurn("user", "Draw this, and tell me the time.", images=(image,)),
        ChatTurn(
            "assistant",
            "On it.",
            tool_calls=(
                ToolCall("toolu_1", "draw", {"prompt": "a cat"}),
                ToolCall("toolu_2", "clock", {}),
            ),
        ),
        ChatTurn(
            "user",
            "Thanks!",
            tool_results=(
                ToolResult("toolu_1", "Sent."),
                ToolResult("toolu_2", "No clock here.", is_error=True),
            ),
        ),
    ]
    await collect(provider, completion(system="", turns=turns, tools=(draw,)))
    body = fake_llm.requests[0].json
    assert body["tools"] == [
        {
            "name": "draw",
            "description": "Draw a picture.",
            "input_schema": {"type": "object", "properties": {}},
        }
    ]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/jpeg",
                        "data": "/9ggZmFrZSBqcGVn",
                    },
                },
                {"type": "text", "text": "Draw this, and tell me the time."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "toolu_1", "name": "draw", "input": {"prompt": "a cat"}},
                {"type": "tool_use", "id": "toolu_2", "name": "clock", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "Sent.",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "No clock here.",
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks!"},
            ],
        },
    ]


async def test_tool_use_blocks_stream_with_input_json_deltas(
    fake_llm: FakeLLM, provider: AnthropicProvider
) -> None:
    """The fake streams a tool_use block after the text block, its input in fragments, and
    stop_reason tool_use."""
    fake_llm.script(
        FakeReply(text="Sure.", tool_calls=[FakeToolCall("draw", {"prompt": "a long prompt"})])
    )
    client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=fake_llm.base_url)
    try:
        events = [
            event
            async for event in await client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=50,
                messages=[{"role": "user", "content": "Hi"}],
                stream=True,
            )
        ]
    finally:
        await client.close()
    starts = [event for event in events if event.type == "content_block_start"]
    assert [(event.index, event.content_block.type) for event in starts] == [
        (0, "text"),
        (1, "tool_use"),
    ]
    fragments = [
        event.delta.partial_json
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
    ]
    assert len(fragments) >= 3
    assert "".join(fragments) == '{"prompt": "a long prompt"}'
    [message_delta] = [event for event in events if event.type == "message_delta"]
    assert message_delta.delta.stop_reason == "tool_use"


def test_joined_user_turns_keep_their_blocks_with_the_results_first() -> None:
    image = ImagePart(b"png", "image/png")
    messages = alternating_messages(
        [
            ChatTurn("user", "Time?"),
            ChatTurn("assistant", "", tool_calls=(ToolCall("t1", "clock", {}),)),
            ChatTurn("user", "", tool_results=(ToolResult("t1", "12:30"),)),
            ChatTurn("user", "Bob: and this?", images=(image,)),
            ChatTurn("user", "Alice: hi"),
        ]
    )
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "12:30", "is_error": False},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "cG5n"},
            },
            {"type": "text", "text": "Bob: and this?\n\nAlice: hi"},
        ],
    }
    assert messages[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "clock", "input": {}}],
    }


def test_results_without_their_calls_are_left_out() -> None:
    """A history cut after the assistant's calls (or before them) must not send results the
    API would refuse."""
    messages = alternating_messages(
        [
            ChatTurn("assistant", "", tool_calls=(ToolCall("t1", "clock", {}),)),
            ChatTurn("user", "", tool_results=(ToolResult("t1", "12:30"),)),
            ChatTurn("user", "What now?"),
            ChatTurn("assistant", "Nothing.", tool_calls=(ToolCall("t2", "clock", {}),)),
            ChatTurn(
                "user", "Go on.", tool_results=(ToolResult("t9", "?"), ToolResult("t2", "13:00"))
            ),
        ]
    )
    assert messages == [
        {"role": "user", "content": "What now?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Nothing."},
                {"type": "tool_use", "id": "t2", "name": "clock", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t2", "content": "13:00", "is_error": False},
                {"type": "text", "text": "Go on."},
            ],
        },
    ]
