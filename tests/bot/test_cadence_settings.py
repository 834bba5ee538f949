"""The cadence settings of a reply streaming to Telegram, each set and observed in the calls the
fake Bot API receives: TELEGRAM_DRAFT_INTERVAL, TELEGRAM_EDIT_INTERVAL (a private chat whose
drafts Telegram refuses) and TELEGRAM_GROUP_EDITS_PER_MINUTE."""

from __future__ import annotations

import itertools

from tests.bot.conftest import BotAppFactory
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram import (
    RecordedCall,
    group_text,
    mention_entities,
    private_text,
    tg_group,
    tg_user,
)

FAY = tg_user(7401, "Fay", "fay")
GROUP = tg_group(-100741, "Cadence")
INTERVAL = 0.3
# About 1.5 s of streaming: several intervals long.
TEXT = " ".join(f"word{i:02}" for i in range(60))
SLOW = FakeReply(text=TEXT, chunk_size=8, delay=0.03)


def _gaps(calls: list[RecordedCall]) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]


async def test_drafts_are_updated_at_the_draft_interval(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(telegram_draft_interval=INTERVAL) as bot_app:
        bot_app.llm.script(SLOW)
        bot_app.telegram.push_update(private_text(FAY, "stream it"))
        await bot_app.telegram.wait_for_call(
            "sendMessage", lambda call: call.params.get("chat_id") == FAY.id
        )
        drafts = bot_app.telegram.calls_to("sendMessageDraft")
    assert len(drafts) >= 2
    assert all(gap >= INTERVAL * 0.9 for gap in _gaps(drafts)), _gaps(drafts)


async def test_without_drafts_a_private_message_is_edited_at_the_edit_interval(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(telegram_edit_interval=INTERVAL) as bot_app:
        bot_app.telegram.fail_next(
            "sendMessageDraft", error_code=400, description="Bad Request: method is unavailable"
        )
        bot_app.llm.script(SLOW)
        bot_app.telegram.push_update(private_text(FAY, "stream it"))
        await bot_app.telegram.wait_for_call(
            "editMessageText", lambda call: call.params.get("text") == TEXT
        )
        edits = bot_app.telegram.calls_to("editMessageText")
    streaming = edits[:-1]  # the final edit follows the stream's end at once
    assert len(streaming) >= 2
    assert all(gap >= INTERVAL * 0.9 for gap in _gaps(streaming)), _gaps(streaming)


async def test_a_group_gets_no_more_edits_a_minute_than_the_setting_allows(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(
        telegram_group_edit_interval=0.05, telegram_group_edits_per_minute=2
    ) as bot_app:
        bot_app.llm.script(SLOW)
        text = "@test_ai_bot count"
        bot_app.telegram.push_update(
            group_text(GROUP, FAY, text, entities=mention_entities(text, "test_ai_bot"))
        )
        await bot_app.telegram.wait_for_call(
            "editMessageText", lambda call: call.params.get("text") == TEXT
        )
        edits = bot_app.telegram.calls_to("editMessageText")
    # Two edits while streaming (every 0.05 s it would be some thirty), then the whole text.
    assert [call.params["text"] == TEXT for call in edits] == [False, False, True]
