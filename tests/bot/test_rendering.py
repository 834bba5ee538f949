"""The AI's Markdown as Telegram shows it: plain text with entities (UTF-16 offsets), never
parse_mode markup; long answers cut into messages without breaking an entity."""

from __future__ import annotations

from typing import Any

from tests.bot.conftest import BotApp
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram.entities import mention_entities
from tests.support.fake_telegram.fake import RecordedCall
from tests.support.fake_telegram.updates import group_text, private_text, tg_group, tg_user

ALICE = tg_user(7301, "Alice", "alice")
GROUP = tg_group(-100301, "Readers")

NESTED = """😀 **Bold _italic_ and [a link](https://example.com/docs)** end

```python
print("hi")
```

- first
- second with `code`

[bad](javascript:alert(1)) <b>raw</b>"""


def _extract(text: str, entity: dict[str, Any]) -> str:
    """The text an entity covers, offsets counted in UTF-16 code units as Telegram does."""
    units = text.encode("utf-16-le")
    offset, length = entity["offset"], entity["length"]
    return units[2 * offset : 2 * (offset + length)].decode("utf-16-le")


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def _sent_messages(bot_app: BotApp, chat_id: int, count: int) -> list[RecordedCall]:
    await bot_app.telegram.wait_for_call(
        "sendMessage", lambda call: call.params.get("chat_id") == chat_id, nth=count
    )
    return [
        call
        for call in bot_app.telegram.calls_to("sendMessage")
        if call.params["chat_id"] == chat_id
    ]


async def test_nested_markdown_arrives_as_entities(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text=NESTED, chunk_size=7, delay=0.01))
    bot_app.telegram.push_update(private_text(ALICE, "format something"))
    [final] = await _sent_messages(bot_app, ALICE.id, 1)
    assert "parse_mode" not in final.params
    text, entities = final.params["text"], final.params["entities"]
    assert isinstance(text, str)
    assert isinstance(entities, list)
    assert all(
        isinstance(e["offset"], int) and isinstance(e["length"], int) and isinstance(e["type"], str)
        for e in entities
    )
    covered = {(e["type"], _extract(text, e)) for e in entities}
    assert ("bold", "Bold italic and a link") in covered
    assert ("italic", "italic") in covered
    assert ("pre", 'print("hi")') in covered
    assert ("code", "code") in covered
    [link] = [e for e in entities if e["type"] == "text_link"]
    assert (_extract(text, link), link["url"]) == ("a link", "https://example.com/docs")
    [pre] = [e for e in entities if e["type"] == "pre"]
    assert pre["language"] == "python"
    # Markdown's marks are gone; list items stay apart; the javascript: link is plain text.
    assert "**" not in text
    assert "```" not in text
    assert "first" in text
    assert "second with code" in text
    assert "bad" in text
    assert "javascript" not in str(entities)
    assert "<b>" not in text
    # What Telegram stores is what was sent (the fake refuses offsets outside the text).
    [stored] = [m for (chat, _), m in bot_app.telegram.messages.items() if chat == ALICE.id]
    assert {(e["type"], _extract(stored["text"], e)) for e in stored["entities"]} == covered
    # The drafts carry entities too, never markup.
    drafts = bot_app.telegram.calls_to("sendMessageDraft")
    assert drafts
    assert all("parse_mode" not in call.params for call in drafts)
    assert any(call.params.get("entities") for call in drafts)


async def test_a_long_answer_splits_without_breaking_an_entity(bot_app: BotApp) -> None:
    sections = [
        f"## Part {i}\n\n😀 Some **bold phrase {i}** and _italic {i}_ with `code {i}` "
        + "and words " * 25
        + f"\n\n```\nblock {i}\n```"
        for i in range(30)
    ]
    markdown = "\n\n".join(sections)
    bot_app.llm.script(FakeReply(text=markdown, chunk_size=2000))
    bot_app.telegram.push_update(private_text(ALICE, "write a lot"))
    await bot_app.telegram.wait_for_call(
        "sendMessage",
        lambda call: call.params.get("chat_id") == ALICE.id and "block 29" in call.params["text"],
    )
    sent = await _sent_messages(bot_app, ALICE.id, 1)
    assert len(sent) >= 2
    bolds: list[str] = []
    for call in sent:
        text, entities = call.params["text"], call.params.get("entities", [])
        assert "parse_mode" not in call.params
        assert _utf16_length(text) <= 4096
        for entity in entities:
            assert entity["offset"] >= 0
            assert entity["length"] > 0
            assert entity["offset"] + entity["length"] <= _utf16_length(text)
        bolds += [_extract(text, e) for e in entities if e["type"] == "bold"]
        blocks = [_extract(text, e) for e in entities if e["type"] == "pre"]
        assert all(block.startswith("block ") for block in blocks)
    # Every bold phrase arrived whole, in one message, in order.
    assert [b for b in bolds if b.startswith("bold phrase")] == [
        f"bold phrase {i}" for i in range(30)
    ]


async def test_a_group_reply_is_edited_with_entities(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="A **bold** answer with `code`", chunk_size=4, delay=0.02))
    text = "@test_ai_bot please"
    bot_app.telegram.push_update(
        group_text(GROUP, ALICE, text, entities=mention_entities(text, "test_ai_bot"))
    )
    await bot_app.telegram.wait_for_call(
        "editMessageText",
        lambda call: call.params.get("text") == "A bold answer with code",
    )
    edits = bot_app.telegram.calls_to("editMessageText")
    assert all("parse_mode" not in call.params for call in edits)
    final = edits[-1]
    assert {(e["type"], _extract(final.params["text"], e)) for e in final.params["entities"]} == {
        ("bold", "bold"),
        ("code", "code"),
    }
