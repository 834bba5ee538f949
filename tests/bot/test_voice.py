"""Voice in Telegram: a voice note (or a round video) sent to the bot is downloaded through the
Bot API, kept as our media, transcribed and answered; `/voice` makes the AI answer with a voice
note too, sent with sendVoice. Real Ogg/Opus and MP4 files (espeak-ng, ffmpeg)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from llm.catalogue import DEFAULT_MODELS, speech_cost
from models import AiReply, AiReplyStatus, Chat, Media, MediaKind, Message, MessageType
from services.ai.voice import speakable
from tests.bot.conftest import BotApp
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram.entities import mention_entities
from tests.support.fake_telegram.fake import RecordedCall
from tests.support.fake_telegram.updates import (
    bot_added_to_group,
    group_text,
    private_text,
    sound_message,
    tg_group,
    tg_private_chat,
    tg_user,
)
from tests.support.voices import round_video, speeches, transcriptions, voice_note

ALICE = tg_user(7301, "Alice", "alice")
BORIS = tg_user(7302, "Boris", "boris")
GROUP = tg_group(-100731, "Trip")
WORDS = "What is the weather in Lisbon"
TTS = next(model for model in DEFAULT_MODELS if model.id == "tts-1")


def _to(chat_id: int) -> Callable[[RecordedCall], bool]:
    return lambda call: call.params.get("chat_id") == chat_id


async def test_a_voice_note_to_the_bot_is_transcribed_and_answered(
    bot_app: BotApp, tmp_path: Path
) -> None:
    audio = voice_note(WORDS, tmp_path)
    bot_app.llm.script(FakeReply(text=WORDS), FakeReply(text="Sunny and warm."))
    file = bot_app.telegram.add_file(audio, "voice", "oga")
    update = sound_message(tg_private_chat(ALICE), ALICE, "voice", file, duration=3)
    bot_app.telegram.push_update(update)
    answer = await bot_app.telegram.wait_for_call("sendMessage", _to(ALICE.id), timeout=15)
    assert answer.params["text"] == "Sunny and warm."
    fetched = await bot_app.telegram.wait_for_call("getFile")
    assert fetched.params["file_id"] == file["file_id"]
    (heard,) = transcriptions(bot_app.llm)
    assert heard.file is not None
    assert heard.file.data == audio
    assert (heard.file.filename or "").endswith(".ogg")
    asked = bot_app.llm.requests[-1].json["messages"][-1]
    assert asked["content"] == f"[voice] {WORDS}"
    async with bot_app.sessionmaker() as session:
        note = await session.scalar(select(Message).where(Message.type == MessageType.VOICE))
        assert note is not None
        assert note.transcript == WORDS
        assert note.telegram_message_id == update["message"]["message_id"]
        media = await session.scalar(select(Media))
        assert media is not None
        assert (media.kind, media.mime_type) == (MediaKind.VOICE, "audio/ogg")
        reply = await session.scalar(select(AiReply))
        assert reply is not None
        assert reply.audio_seconds == media.duration


async def test_a_voice_note_that_cannot_be_transcribed_is_told_and_costs_nothing(
    bot_app: BotApp, tmp_path: Path
) -> None:
    bot_app.llm.script(FakeReply(status=500))
    file = bot_app.telegram.add_file(voice_note(WORDS, tmp_path), "voice", "oga")
    bot_app.telegram.push_update(
        sound_message(tg_private_chat(ALICE), ALICE, "voice", file, duration=3)
    )
    told = await bot_app.telegram.wait_for_call("sendMessage", _to(ALICE.id), timeout=15)
    assert told.params["text"].startswith("⚠️ The voice note could not be transcribed")
    assert not [r for r in bot_app.llm.requests if r.path.endswith("/chat/completions")]
    async with bot_app.sessionmaker() as session:
        reply = await session.scalar(select(AiReply))
        assert reply is not None
        assert reply.status == AiReplyStatus.FAILED
        assert reply.cost_micros == 0
        note = await session.scalar(select(Message).where(Message.type == MessageType.VOICE))
        assert note is not None
        assert note.transcript is None


async def test_a_round_video_note_is_heard_too(bot_app: BotApp, tmp_path: Path) -> None:
    video = round_video(WORDS, tmp_path)
    bot_app.llm.script(FakeReply(text=WORDS), FakeReply(text="Seen and heard."))
    file = bot_app.telegram.add_file(video, "video_notes", "mp4")
    update = sound_message(tg_private_chat(ALICE), ALICE, "video_note", file, duration=3)
    bot_app.telegram.push_update(update)
    answer = await bot_app.telegram.wait_for_call("sendMessage", _to(ALICE.id), timeout=15)
    assert answer.params["text"] == "Seen and heard."
    (heard,) = transcriptions(bot_app.llm)
    assert heard.file is not None
    assert heard.file.data == video
    assert (heard.file.filename or "").endswith(".mp4")
    async with bot_app.sessionmaker() as session:
        media = await session.scalar(select(Media))
        assert media is not None
        assert media.kind == MediaKind.VIDEO
        assert media.duration is not None
        assert media.duration > 0


async def test_voice_replies_are_sent_with_send_voice_and_charged(bot_app: BotApp) -> None:
    answer = "It is **sunny** today."
    bot_app.telegram.push_update(private_text(ALICE, "/voice"))
    switched = await bot_app.telegram.wait_for_call("sendMessage", _to(ALICE.id))
    assert switched.params["text"].startswith("Voice replies on")
    bot_app.llm.script(FakeReply(text=answer))
    question = private_text(ALICE, "weather?")
    bot_app.telegram.push_update(question)
    sent = await bot_app.telegram.wait_for_call("sendVoice", _to(ALICE.id), timeout=15)
    attached = sent.params["voice"]
    assert attached.startswith("attach://")  # aiogram's multipart, as Telegram reads it
    voice = sent.params[attached.removeprefix("attach://")]
    assert isinstance(voice, bytes)
    assert voice.startswith(b"OggS")
    replied = sent.params["reply_parameters"]["message_id"]
    assert replied == question["message"]["message_id"]
    text = bot_app.telegram.calls_to("sendMessage")[-1]
    assert text.at < sent.at  # the text first, then its voice
    words = speakable(answer)
    (said,) = speeches(bot_app.llm)
    assert said.json["input"] == words
    async with bot_app.sessionmaker() as session:
        reply = await session.scalar(select(AiReply).where(AiReply.status == AiReplyStatus.DONE))
        assert reply is not None
        assert reply.speech_characters == len(words)
        assert reply.cost_micros >= speech_cost(TTS, len(words))
        spoken = await session.scalar(select(Message).where(Message.type == MessageType.VOICE))
        assert spoken is not None
        assert spoken.transcript == words
    bot_app.telegram.push_update(private_text(ALICE, "/voice off"))
    off = await bot_app.telegram.wait_for_call("sendMessage", _to(ALICE.id), nth=3)
    assert off.params["text"].startswith("Voice replies off")


async def test_in_a_group_a_voice_reply_to_the_ai_is_heard_and_other_voice_notes_are_not(
    bot_app: BotApp, tmp_path: Path
) -> None:
    telegram = bot_app.telegram
    audio = voice_note(WORDS, tmp_path)
    bot_app.llm.script(FakeReply(text="Which city?", chunk_size=100), FakeReply(text=WORDS))
    bot_app.llm.script(FakeReply(text="Lisbon: sunny.", chunk_size=100))
    telegram.push_update(bot_added_to_group(GROUP, ALICE, telegram.bot_user))
    text = "@test_ai_bot weather please"
    telegram.push_update(
        group_text(GROUP, ALICE, text, entities=mention_entities(text, "test_ai_bot"))
    )
    await telegram.wait_for_call("sendMessage", _to(GROUP.id), timeout=15)
    asked_back = next(m for (chat, _), m in telegram.messages.items() if chat == GROUP.id)
    await wait_until_linked(bot_app, asked_back["message_id"])
    chatter = telegram.add_file(audio, "voice", "oga")
    telegram.push_update(sound_message(GROUP, BORIS, "voice", chatter, duration=3))
    answer_to = telegram.add_file(audio, "voice", "oga")
    telegram.push_update(
        sound_message(GROUP, BORIS, "voice", answer_to, duration=3, reply_to=asked_back)
    )
    answer = await telegram.wait_for_call("sendMessage", _to(GROUP.id), nth=2, timeout=15)
    assert answer.params["text"] == "Lisbon: sunny."
    fetched = [call.params["file_id"] for call in telegram.calls_to("getFile")]
    assert fetched == [answer_to["file_id"]]  # the voice note to no one stays in Telegram
    assert bot_app.llm.requests[-1].json["messages"][-1]["content"] == f"Boris: [voice] {WORDS}"


async def wait_until_linked(bot_app: BotApp, telegram_message_id: int) -> None:
    """The AI's message is linked to the Telegram message that shows it (a reply to that one is
    a reply to the AI)."""

    async def linked() -> bool:
        async with bot_app.sessionmaker() as session:
            found = await session.scalar(
                select(Message.id).where(Message.telegram_message_id == telegram_message_id)
            )
        return found is not None

    async with asyncio.timeout(10):
        while not await linked():  # noqa: ASYNC110 (the database has no event to await)
            await asyncio.sleep(0.02)


async def test_in_a_group_only_admins_turn_voice_replies_on(bot_app: BotApp) -> None:
    telegram = bot_app.telegram
    telegram.push_update(bot_added_to_group(GROUP, ALICE, telegram.bot_user))
    telegram.set_admins(GROUP.id, [ALICE.id], creator=ALICE.id)
    telegram.push_update(group_text(GROUP, BORIS, "/voice on"))
    refused = await telegram.wait_for_call("sendMessage", _to(GROUP.id))
    assert refused.params["text"] == "Only the group's admins can change the AI's settings."
    telegram.push_update(group_text(GROUP, ALICE, "/voice"))
    done = await telegram.wait_for_call("sendMessage", _to(GROUP.id), nth=2)
    assert done.params["text"] == "Voice replies on."

    async def voice_replies() -> bool:  # the handler answers before its unit of work commits
        async with bot_app.sessionmaker() as session:
            chat = await session.scalar(select(Chat).where(Chat.telegram_chat_id == GROUP.id))
        return chat is not None and chat.ai_voice_replies

    async with asyncio.timeout(5):
        while not await voice_replies():  # noqa: ASYNC110 (the database has no event to await)
            await asyncio.sleep(0.02)
