"""Local token estimates never undercount what real tokenizers count."""

from __future__ import annotations

import pytest

from llm.base import ChatTurn, ImagePart, ToolCall, ToolResult, ToolSpec
from llm.tokens import (
    IMAGE_MAX_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_OVERHEAD,
    TOOLS_OVERHEAD,
    estimate_image_tokens,
    estimate_prompt_tokens,
    estimate_tokens,
    estimate_tool_call_tokens,
)
from tests.llm.support import image_bytes

# Each sample with the larger of its OpenAI cl100k_base and o200k_base counts, measured with a
# real implementation of those tokenizers.
SAMPLES = {
    "english": (
        "I think the main issue is that we're not handling the edge case where the user hasn't "
        "set their timezone yet. Could you add a fallback to UTC and write a test for it?",
        38,
    ),
    "russian": (
        "Здравствуйте! Подскажите, пожалуйста, как настроить уведомления в приложении? "
        "Я пробовал перезагрузить телефон, но ничего не изменилось.",
        61,
    ),
    "chinese": (
        "请帮我把这段代码改成异步的版本，并且加上错误处理。谢谢！我能吞下玻璃而不伤身体。",
        45,
    ),
    "code": (
        "def decode(self, data: bytes) -> str:\n"
        "    if len(data) > 0x10000:\n"
        '        raise ValueError(f"too large: {len(data)}")\n'
        '    return data.decode("utf-8", errors="replace")\n',
        50,
    ),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_estimate_is_at_least_what_real_tokenizers_count(name: str) -> None:
    text, real_tokens = SAMPLES[name]
    estimate = estimate_tokens(text)
    assert estimate >= real_tokens
    assert estimate <= 2 * real_tokens, "conservative, but not wildly so"


@pytest.mark.parametrize("name", SAMPLES)
def test_estimate_grows_with_length(name: str) -> None:
    text, _ = SAMPLES[name]
    estimates = [estimate_tokens(text[:end]) for end in range(0, len(text) + 1, 7)]
    assert estimates == sorted(estimates)
    assert estimate_tokens(text * 3) >= 3 * estimate_tokens(text) - 3


def test_empty_text_costs_nothing() -> None:
    assert estimate_tokens("") == 0


@pytest.mark.parametrize(
    "text",
    ["3f9a2c7e1b0d4e5f", "xQz9Lk2pVb7Ng4Rt8Wm1", "😀🎉👍", "    \n\n\t\t", "\x00\x01", "é" * 10],
)
def test_unusual_text_costs_at_least_a_token_per_few_characters(text: str) -> None:
    assert estimate_tokens(text) >= len(text) // 4


def test_prompt_estimate_adds_each_message_overhead() -> None:
    turns = [ChatTurn("user", "Hello there"), ChatTurn("assistant", "Hi! What's up?")]
    expected = (
        REPLY_OVERHEAD
        + MESSAGE_OVERHEAD
        + estimate_tokens("Be brief.")
        + sum(MESSAGE_OVERHEAD + estimate_tokens(turn.content) for turn in turns)
    )
    assert estimate_prompt_tokens("Be brief.", turns) == expected


def test_prompt_without_a_system_prompt_has_no_system_message() -> None:
    turns = [ChatTurn("user", "Hello there")]
    assert estimate_prompt_tokens("", turns) == (
        REPLY_OVERHEAD + MESSAGE_OVERHEAD + estimate_tokens("Hello there")
    )


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        ((1092, 1092), 1590),  # Anthropic's table: its largest square
        ((1024, 1024), 1399),  # Anthropic's 1398.1, above OpenAI's 765 (4 tiles)
        ((200, 200), 255),  # OpenAI's one tile, above Anthropic's 54
        ((768, 2048), 1445),  # OpenAI's 8 tiles, above Anthropic's
        ((4000, 3000), 1600),  # Anthropic scales it down first
    ],
)
def test_an_image_costs_the_larger_of_what_the_vendors_charge(
    size: tuple[int, int], tokens: int
) -> None:
    assert estimate_image_tokens(ImagePart(image_bytes(size), "image/png")) == tokens


def test_an_unreadable_image_costs_the_most_an_image_can() -> None:
    assert estimate_image_tokens(ImagePart(b"garbage", "image/jpeg")) == IMAGE_MAX_TOKENS


def test_images_tool_calls_and_results_add_to_a_turn() -> None:
    image = ImagePart(image_bytes((300, 300)), "image/png")
    call = ToolCall("call_1", "draw", {"prompt": "a cat on a roof"})
    plain = estimate_prompt_tokens("", [ChatTurn("user", "Look")])
    with_image = estimate_prompt_tokens("", [ChatTurn("user", "Look", images=(image,))])
    assert with_image == plain + estimate_image_tokens(image)
    with_call = estimate_prompt_tokens("", [ChatTurn("assistant", "Look", tool_calls=(call,))])
    assert with_call == plain + estimate_tool_call_tokens(call)
    assert estimate_tool_call_tokens(call) >= MESSAGE_OVERHEAD + estimate_tokens(
        '{"prompt": "a cat on a roof"}'
    )
    result = ToolResult("call_1", "The picture is sent to the chat.")
    with_result = estimate_prompt_tokens("", [ChatTurn("user", "Look", tool_results=(result,))])
    assert with_result >= plain + MESSAGE_OVERHEAD + estimate_tokens(result.content)


def test_tools_offered_cost_their_schema_and_the_vendor_prompt() -> None:
    tool = ToolSpec(
        "draw",
        "Draw a picture of what the user asks for.",
        {"type": "object", "properties": {"prompt": {"type": "string"}}},
    )
    turns = [ChatTurn("user", "Hi")]
    without = estimate_prompt_tokens("Be kind.", turns)
    one = estimate_prompt_tokens("Be kind.", turns, (tool,))
    two = estimate_prompt_tokens("Be kind.", turns, (tool, tool))
    assert one - without > TOOLS_OVERHEAD + estimate_tokens(tool.description)
    assert two - one == one - without - TOOLS_OVERHEAD
