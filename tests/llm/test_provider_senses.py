"""Images and tools, alike for every provider, through its vendor's real SDK against the fake
vendor: images reach the vendor as the bytes they were, tools are offered, tool calls stream
whole after the text, and a conversation goes on with their results. The exact wire fields are
in each vendor's own test module."""

from __future__ import annotations

import pytest

from llm.base import ChatTurn, ImagePart, LLMError, Provider, ToolCall, ToolResult, ToolSpec, Usage
from llm.images import prepare_image
from tests.llm.support import Vendor, collect, completion, image_bytes, split_calls
from tests.support.fake_llm import FakeLLM, FakeReply, FakeToolCall

DRAW = ToolSpec(
    name="draw",
    description="Draw a picture of what the user asks for.",
    parameters={
        "type": "object",
        "properties": {"prompt": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["prompt"],
    },
)
CLOCK = ToolSpec("clock", "The current time.", {"type": "object", "properties": {}})
ARGUMENTS = {"prompt": "a red cat on a roof, «watercolour»", "count": 2}


async def test_images_reach_the_vendor_as_they_were(fake_llm: FakeLLM, provider: Provider) -> None:
    photo = prepare_image(image_bytes((2000, 1500), image_format="JPEG"))
    sticker = prepare_image(image_bytes((64, 64), mode="RGBA"))
    turns = [
        ChatTurn("user", "Earlier, a sticker.", images=(sticker,)),
        ChatTurn("assistant", "Nice sticker."),
        ChatTurn("user", "What is in this photo?", images=(photo,)),
    ]
    await collect(provider, completion(turns=turns))
    [recorded] = fake_llm.requests
    assert recorded.images == [sticker, photo]
    assert [image.mime_type for image in recorded.images] == ["image/png", "image/jpeg"]
    assert recorded.turns == turns


async def test_a_tool_call_streams_whole_after_the_text(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(
        FakeReply(
            text="Let me draw that.",
            tool_calls=[FakeToolCall("draw", ARGUMENTS)],
            input_tokens=50,
            output_tokens=20,
        )
    )
    text, calls, usage = split_calls(await collect(provider, completion(tools=(DRAW, CLOCK))))
    assert text == "Let me draw that."
    [call] = calls
    assert call.name == "draw"
    assert isinstance(call.id, str)
    assert call.id
    assert call.arguments == ARGUMENTS
    assert isinstance(call.arguments["count"], int)
    assert usage == Usage(50, 20)
    assert fake_llm.requests[0].tools == [DRAW, CLOCK]


async def test_several_calls_without_text_keep_their_order(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(
        FakeReply(
            text="",
            tool_calls=[
                FakeToolCall("clock", {}, id="call_a"),
                FakeToolCall("draw", {"prompt": "dawn"}, id="call_b"),
                FakeToolCall("clock", "", id="call_c"),  # no arguments at all
            ],
        )
    )
    text, calls, _ = split_calls(await collect(provider, completion(tools=(DRAW, CLOCK))))
    assert text == ""
    assert calls == [
        ToolCall("call_a", "clock", {}),
        ToolCall("call_b", "draw", {"prompt": "dawn"}),
        ToolCall("call_c", "clock", {}),
    ]


async def test_a_conversation_goes_on_with_the_tool_results(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(
        FakeReply(text="One moment.", tool_calls=[FakeToolCall("draw", ARGUMENTS)]),
        FakeReply(text="Here is your cat."),
    )
    image = prepare_image(image_bytes((300, 200)))
    first = [ChatTurn("user", "Draw a cat like this one.", images=(image,))]
    text, calls, _ = split_calls(await collect(provider, completion(turns=first, tools=(DRAW,))))
    second = [
        *first,
        ChatTurn("assistant", text, tool_calls=tuple(calls)),
        ChatTurn("user", "", tool_results=(ToolResult(calls[0].id, "The picture is sent."),)),
    ]
    answer, more_calls, _ = split_calls(
        await collect(provider, completion(turns=second, tools=(DRAW,)))
    )
    assert (answer, more_calls) == ("Here is your cat.", [])
    assert fake_llm.requests[1].turns == second
    assert fake_llm.requests[1].tools == [DRAW]


async def test_results_and_a_new_message_in_one_turn(fake_llm: FakeLLM, provider: Provider) -> None:
    turns = [
        ChatTurn("user", "What time is it? Draw it."),
        ChatTurn(
            "assistant",
            "",
            tool_calls=(ToolCall("c1", "clock", {}), ToolCall("c2", "draw", {"prompt": "a clock"})),
        ),
        ChatTurn(
            "user",
            "Also, make it blue.",
            tool_results=(ToolResult("c1", "12:30"), ToolResult("c2", "Sent.")),
        ),
    ]
    await collect(provider, completion(turns=turns, tools=(DRAW, CLOCK)))
    assert fake_llm.requests[0].turns == turns


async def test_malformed_tool_arguments_fail_the_reply(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(
        FakeReply(text="", tool_calls=[FakeToolCall("draw", '{"prompt": "a c')]),
        FakeReply(text="", tool_calls=[FakeToolCall("draw", '["not", "an object"]')]),
    )
    for _ in range(2):
        with pytest.raises(LLMError) as caught:
            await collect(provider, completion(tools=(DRAW,)))
        assert (caught.value.code, caught.value.retryable) == ("upstream_error", True)


async def test_tools_and_images_count_in_the_estimated_usage(
    fake_llm: FakeLLM, vendor: Vendor, provider: Provider
) -> None:
    """The fake estimates usage as the providers' fallback does: a prompt with an image and
    tools costs more than the text alone."""
    image = prepare_image(image_bytes((1024, 1024)))
    plain = completion(turns=[ChatTurn("user", "Look.")])
    rich = completion(turns=[ChatTurn("user", "Look.", images=(image,))], tools=(DRAW,))
    _, _, plain_usage = split_calls(await collect(provider, plain))
    _, _, rich_usage = split_calls(await collect(provider, rich))
    assert rich_usage.input_tokens > plain_usage.input_tokens + 700, vendor.name


async def test_an_image_of_an_unsupported_type_is_refused(
    fake_llm: FakeLLM, vendor: Vendor, provider: Provider
) -> None:
    """Anthropic takes JPEG, PNG, GIF and WebP only; OpenAI passes the data URL on."""
    turn = ChatTurn("user", "Look.", images=(ImagePart(b"II*\x00", "image/tiff"),))
    if vendor.name == "anthropic":
        with pytest.raises(LLMError) as caught:
            await collect(provider, completion(turns=[turn]))
        assert caught.value.code == "bad_request"
        assert fake_llm.requests == []
    else:
        await collect(provider, completion(turns=[turn]))
        assert fake_llm.requests[0].images == list(turn.images)
