"""OpenAIProvider through the real `openai` SDK against the fake vendor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from llm.base import ChatTurn, ImagePart, LLMErrorCode, ToolCall, ToolResult, ToolSpec, Usage
from llm.openai_provider import OpenAIProvider
from llm.tokens import estimate_prompt_tokens, estimate_tokens, estimate_tool_call_tokens
from tests.llm.support import collect, collect_until_error, completion, expect_error, split
from tests.support.fake_llm import FakeLLM, FakeReply, FakeToolCall


@pytest.fixture
async def provider(fake_llm: FakeLLM) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1", timeout=5)
    yield provider
    await provider.close()


async def test_text_streams_as_several_deltas_then_usage(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.script(
        FakeReply(text="The quick brown fox jumps.", chunk_size=4, input_tokens=42, output_tokens=7)
    )
    deltas, usage = split(await collect(provider, completion()))
    assert "".join(deltas) == "The quick brown fox jumps."
    assert len(deltas) == 7
    assert usage == Usage(input_tokens=42, output_tokens=7)


async def test_request_carries_the_exact_wire_fields(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    turns = [
        ChatTurn("user", "Hi"),
        ChatTurn("assistant", "Hello! How can I help?"),
        ChatTurn("user", "Tell me a joke."),
    ]
    request = completion(model="gpt-4o-mini", system="Be brief.", turns=turns, temperature=0.3)
    await collect(provider, request)
    [recorded] = fake_llm.requests
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer sk-test"
    body = recorded.json
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert body["temperature"] == 0.3
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_compatible_server_gets_max_tokens_and_works_without_a_key(
    fake_llm: FakeLLM,
) -> None:
    provider = OpenAIProvider(
        api_key="", base_url=f"{fake_llm.base_url}/v1", kind="openai_compatible", timeout=5
    )
    try:
        await collect(provider, completion(system=""))
    finally:
        await provider.close()
    [recorded] = fake_llm.requests
    assert recorded.json["max_tokens"] == 256
    assert "max_completion_tokens" not in recorded.json
    assert "temperature" not in recorded.json
    assert recorded.json["messages"] == [{"role": "user", "content": "Say hello."}]
    assert provider.name == "openai_compatible"


async def test_usage_is_estimated_when_the_server_reports_none(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.script(FakeReply(text="Привет, мир!", report_usage=False))
    request = completion()
    deltas, usage = split(await collect(provider, request))
    assert "".join(deltas) == "Привет, мир!"
    assert usage == Usage(
        estimate_prompt_tokens(request.system, request.turns), estimate_tokens("Привет, мир!")
    )


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (FakeReply(status=429, retry_after=7), "rate_limited", True),
        (FakeReply(status=429, error_type="insufficient_quota"), "rate_limited", False),
        (FakeReply(status=500), "upstream_error", True),
        (FakeReply(status=502, error_message="Bad gateway"), "upstream_error", True),
        (FakeReply(status=503), "overloaded", True),
        (FakeReply(status=400, error_type="context_length_exceeded"), "context_too_long", False),
        (
            # vLLM words it so, with no code
            FakeReply(
                status=400,
                error_type="BadRequestError",
                error_message="This model's maximum context length is 4096 tokens. However, "
                "you requested 5000 tokens (4000 in the messages, 1000 in the completion).",
            ),
            "context_too_long",
            False,
        ),
        (FakeReply(status=400), "bad_request", False),
        (FakeReply(status=404), "bad_request", False),
        (FakeReply(status=422), "bad_request", False),
        (FakeReply(status=401), "auth_failed", False),
        (FakeReply(status=403), "auth_failed", False),
    ],
)
async def test_error_statuses_map_to_llm_errors(
    fake_llm: FakeLLM,
    provider: OpenAIProvider,
    reply: FakeReply,
    code: LLMErrorCode,
    retryable: bool,
) -> None:
    await expect_error(fake_llm, provider, reply, code, retryable)


async def test_vendor_message_is_passed_on(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.script(FakeReply(status=400, error_message="Unsupported parameter: 'temperature'"))
    _, error = await collect_until_error(provider, completion())
    assert error.message == "Unsupported parameter: 'temperature'"


async def test_error_event_in_the_stream(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.script(FakeReply(text="abcdefghijkl", chunk_size=2, fail_after_chunks=2))
    deltas, error = await collect_until_error(provider, completion())
    assert deltas == ["ab", "cd"]
    assert (error.code, error.retryable) == ("upstream_error", True)


async def test_images_tools_calls_and_results_in_the_wire_format(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    image = ImagePart(b"\x89PNG fake bytes", "image/png")
    draw = ToolSpec("draw", "Draw a picture.", {"type": "object", "properties": {}})
    turns = [
        ChatTurn("user", "Draw this, and tell me the time.", images=(image,)),
        ChatTurn(
            "assistant",
            "",
            tool_calls=(
                ToolCall("call_1", "draw", {"prompt": "a cat"}),
                ToolCall("call_2", "clock", {}),
            ),
        ),
        ChatTurn(
            "user",
            "Thanks!",
            tool_results=(
                ToolResult("call_1", "Sent."),
                ToolResult("call_2", "No clock here.", is_error=True),
            ),
        ),
        ChatTurn("assistant", "Done.", tool_calls=(ToolCall("call_3", "draw", {"prompt": "b"}),)),
        ChatTurn("user", "", tool_results=(ToolResult("call_3", "Sent."),)),
    ]
    await collect(provider, completion(system="", turns=turns, tools=(draw,)))
    body = fake_llm.requests[0].json
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "draw",
                "description": "Draw a picture.",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Draw this, and tell me the time."},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORyBmYWtlIGJ5dGVz"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "draw", "arguments": '{"prompt": "a cat"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "clock", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sent."},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: No clock here."},
        {"role": "user", "content": "Thanks!"},
        {
            "role": "assistant",
            "content": "Done.",
            "tool_calls": [
                {
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "draw", "arguments": '{"prompt": "b"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_3", "content": "Sent."},
    ]


async def test_tool_calls_stream_as_deltas_with_finish_reason_tool_calls(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    """The fake streams the arguments in fragments after a first delta with the id and name."""
    fake_llm.script(
        FakeReply(text="", tool_calls=[FakeToolCall("draw", {"prompt": "a long prompt"})])
    )
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1")
    try:
        chunks = [
            chunk
            async for chunk in await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        ]
    finally:
        await client.close()
    deltas = [
        call
        for chunk in chunks
        for choice in chunk.choices
        for call in choice.delta.tool_calls or ()
    ]
    assert len(deltas) >= 3
    first, *rest = deltas
    assert first.id
    assert first.function is not None
    assert first.function.name == "draw"
    fragments = [delta.function.arguments or "" for delta in rest if delta.function]
    assert "".join(fragments) == '{"prompt": "a long prompt"}'
    assert [choice.finish_reason for chunk in chunks for choice in chunk.choices][
        -1
    ] == "tool_calls"


async def test_usage_estimate_counts_tools_and_calls_when_the_server_reports_none(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    draw = ToolSpec("draw", "Draw a picture.", {"type": "object", "properties": {}})
    fake_llm.script(
        FakeReply(
            text="Ok.",
            tool_calls=[FakeToolCall("draw", {"prompt": "x"}, id="c1")],
            report_usage=False,
        )
    )
    request = completion(tools=(draw,))
    events = await collect(provider, request)
    call = ToolCall("c1", "draw", {"prompt": "x"})
    assert events[-1] == Usage(
        estimate_prompt_tokens(request.system, request.turns, request.tools),
        estimate_tokens("Ok.") + estimate_tool_call_tokens(call),
    )
    assert call in events
