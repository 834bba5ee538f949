"""Voice end to end: voice notes transcribed (before the AI answers them, or on a member's
request) and answers spoken, through the real openai SDK against the fake vendor, charged in
the ledger. The voice notes are real Ogg/Opus files (espeak-ng and ffmpeg)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm.catalogue import DEFAULT_MODELS, cost_micros, speech_cost, transcription_cost
from models import AiJobKind, AiReply, LedgerEntry
from services.ai.voice import speakable
from tests.ai.conftest import OwnAppFactory
from tests.ai.helpers import (
    bot_message,
    group_with_ai,
    open_ai_chat,
    reply_row,
    set_chat_ai,
    socket_of,
)
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer
from tests.support.voices import last_question, speeches, transcriptions, voice_note
from tests.support.ws import Frame, WsClient

WHISPER = next(model for model in DEFAULT_MODELS if model.id == "whisper-1")
TTS = next(model for model in DEFAULT_MODELS if model.id == "tts-1")
GPT = next(model for model in DEFAULT_MODELS if model.id == "gpt-4o-mini")
WORDS = "Please book the flight to Lisbon on Friday"


async def upload_voice(user: ApiUser, audio: bytes) -> dict[str, Any]:
    response = await user.post(
        "/api/v1/media",
        files={"file": ("voice.ogg", audio, "audio/ogg")},
        data={"kind": "voice"},
    )
    assert response.status_code == 200, response.text
    media: dict[str, Any] = response.json()
    return media


async def send_voice(
    user: ApiUser, chat_id: int, audio: bytes, **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    media = await upload_voice(user, audio)
    message: dict[str, Any] = await user.ok(
        "POST", f"/api/v1/chats/{chat_id}/messages", json={"media_ids": [media["id"]], **extra}
    )
    return media, message


def transcribe_path(chat_id: int, message_id: int) -> str:
    return f"/api/v1/chats/{chat_id}/messages/{message_id}/transcribe"


def assert_transcribed_frame(frame: dict[str, Any], chat_id: int, message_id: int) -> None:
    assert frame["type"] == "message_transcribed"
    assert frame["chat_id"] == chat_id
    assert frame["message_id"] == message_id
    assert type(frame["seq"]) is int
    assert isinstance(frame["transcript"], str)
    assert frame["transcript"]


async def frames_until(
    ws: WsClient, done: Callable[[list[Frame]], bool], timeout: float = 15
) -> list[Frame]:
    """Every frame until `done` says the ones so far are enough. A socket's persisted events
    may come after ephemeral ones sent later (the seam holds them until it knows where its
    client stands), so a test that needs both reads them all."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout):
        while not done(frames):
            frames.append(await ws.recv(timeout))
    return frames


def first(frames: list[Frame], type_: str, **where: Any) -> Frame:
    return next(
        f for f in frames if f["type"] == type_ and all(f.get(k) == v for k, v in where.items())
    )


def has(*types: str) -> Callable[[list[Frame]], bool]:
    return lambda frames: all(any(f["type"] == t for f in frames) for t in types)


def bot_messages(frames: list[Frame]) -> list[dict[str, Any]]:
    return [
        f["message"]
        for f in frames
        if f["type"] == "new_message" and f["message"]["sender"]["is_bot"]
    ]


async def history(user: ApiUser, chat_id: int) -> list[dict[str, Any]]:
    page = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    messages: list[dict[str, Any]] = page["messages"]
    return messages


async def test_a_voice_note_in_the_ai_chat_is_transcribed_then_answered_as_text(
    server: LiveServer,
    alice: ApiUser,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    audio = voice_note(WORDS, tmp_path)
    fake_llm.script(FakeReply(text=WORDS), FakeReply(text="Booked: Friday to Lisbon."))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        media, message = await send_voice(alice, chat_id, audio)
        assert message["message_type"] == "voice"
        assert message["transcript"] is None
        frames = await frames_until(
            ws,
            lambda fs: has("message_transcribed", "ai_reply_done")(fs) and bool(bot_messages(fs)),
        )
    transcribed = first(frames, "message_transcribed")
    assert_transcribed_frame(transcribed, chat_id, message["id"])
    assert transcribed["transcript"] == WORDS
    reply_id = first(frames, "ai_reply_done")["reply_id"]
    (answer,) = bot_messages(frames)
    assert answer["text"] == "Booked: Friday to Lisbon."
    (heard,) = transcriptions(fake_llm)
    assert heard.file is not None
    assert heard.file.data == audio  # the note's own bytes, as multipart
    assert (heard.file.filename or "").endswith(".ogg")
    assert heard.json["model"] == WHISPER.vendor_model
    assert last_question(fake_llm) == f"[voice] {WORDS}"
    shown = next(m for m in await history(alice, chat_id) if m["id"] == message["id"])
    assert shown["transcript"] == WORDS
    row = await reply_row(sessionmaker, reply_id)
    assert row.audio_seconds == media["duration"]
    assert row.audio_seconds > 0
    tokens = cost_micros(GPT, row.input_tokens, row.output_tokens)
    assert row.cost_micros == tokens + transcription_cost(WHISPER, row.audio_seconds)


async def test_another_member_sees_the_transcript_of_a_voice_reply_to_the_ai(
    own_app: OwnAppFactory, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    audio = voice_note(WORDS, tmp_path)
    fake_llm.script(FakeReply(text="Where to?"), FakeReply(text=WORDS))
    fake_llm.script(FakeReply(text="Lisbon it is."))
    async with own_app() as app:
        alice = await app.sign_up(401, "Alice")
        bob = await app.sign_up(402, "Bob")
        group_id = await group_with_ai(alice, bob)
        async with socket_of(app.server, bob) as bobs:
            await alice.send(group_id, "@test_ai_bot I need a flight")
            question = await bot_message(bobs, timeout=10)
            async with socket_of(app.server, alice) as alices:
                media, note = await send_voice(
                    alice, group_id, audio, reply_to_message_id=question["id"]
                )
                held = await alices.wait_for(
                    "balance_changed", lambda f: f["available"] < f["balance"]
                )
            frames = await frames_until(bobs, has("message_transcribed", "ai_reply_done"))
        transcribed = first(frames, "message_transcribed")
        assert_transcribed_frame(transcribed, group_id, note["id"])
        reply_id = first(frames, "ai_reply_done")["reply_id"]
        assert last_question(fake_llm) == f"Alice: [voice] {WORDS}"
        page = await bob.ok("GET", f"/api/v1/chats/{group_id}/events?after_seq=0")
        replayed = [e for e in page["events"] if e["type"] == "message_transcribed"]
        assert replayed == [transcribed]
        async with app.context.sessionmaker() as session:
            row = await session.get(AiReply, reply_id)
            assert row is not None
            entry = await session.scalar(
                select(LedgerEntry).where(LedgerEntry.reply_id == reply_id)
            )
        assert entry is not None
        assert entry.amount == -row.cost_micros
        audio_price = transcription_cost(WHISPER, row.audio_seconds)
        assert audio_price > 0
        assert row.cost_micros > audio_price
        # The hold covered the audio besides the longest answer (the prompt costs far less).
        assert row.audio_seconds == media["duration"]
        longest_answer = cost_micros(GPT, 0, row.max_tokens)
        assert held["balance"] - held["available"] >= longest_answer + audio_price


async def test_a_member_asks_for_a_transcript_and_pays_for_it(
    own_app: OwnAppFactory, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    audio = voice_note(WORDS, tmp_path)
    fake_llm.script(FakeReply(text=WORDS))
    async with own_app() as app:
        alice = await app.sign_up(411, "Alice")
        bob = await app.sign_up(412, "Bob")
        chat = await alice.private_chat_with(bob)
        media, note = await send_voice(alice, chat["id"], audio)
        price = transcription_cost(WHISPER, media["duration"])
        assert price > 0
        async with socket_of(app.server, alice) as alices, socket_of(app.server, bob) as bobs:
            asked = await bob.post(transcribe_path(chat["id"], note["id"]))
            assert asked.status_code == 202, asked.text
            job = asked.json()
            seen_by_alice = await alices.wait_for("message_transcribed", timeout=10)
            bob_frames = await frames_until(bobs, has("message_transcribed"))
        held = first(bob_frames, "balance_changed")
        seen_by_bob = first(bob_frames, "message_transcribed")
        assert seen_by_alice == seen_by_bob
        assert_transcribed_frame(seen_by_bob, chat["id"], note["id"])
        assert job["status"] == "queued"
        assert type(job["id"]) is int
        assert held["balance"] - held["available"] == price  # the audio's worst case, held
        usage = (await bob.ok("GET", "/api/v1/billing/transactions"))["items"][0]
        assert (usage["kind"], usage["amount"], usage["reply_id"]) == ("usage", -price, job["id"])
        balance = await bob.ok("GET", "/api/v1/billing/balance")
        assert balance["reserved"] == 0
        assert balance["balance"] == held["balance"] - price
        again = await bob.post(transcribe_path(chat["id"], note["id"]))
        assert again.status_code == 200
        assert again.json()["transcript"] == WORDS
        assert again.json()["id"] == note["id"]
        assert len(transcriptions(fake_llm)) == 1
        paid = (await bob.ok("GET", "/api/v1/billing/transactions"))["items"]
        assert [item["kind"] for item in paid].count("usage") == 1  # the 200 cost nothing
        async with app.context.sessionmaker() as session:
            row = await session.get(AiReply, job["id"])
        assert row is not None
        assert row.kind == AiJobKind.TRANSCRIPTION
        assert (row.cost_micros, row.requested_by) == (price, bob.id)
        # A deleted voice note takes its words with it.
        await alice.ok("DELETE", f"/api/v1/messages/{note['id']}")
        shown = next(m for m in await history(bob, chat["id"]) if m["id"] == note["id"])
        assert (shown["is_deleted"], shown["transcript"]) == (True, None)


async def test_a_transcription_that_fails_is_told_and_costs_nothing(
    server: LiveServer, alice: ApiUser, bob: ApiUser, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.script(FakeReply(status=500))
    chat = await alice.private_chat_with(bob)
    _, note = await send_voice(alice, chat["id"], voice_note(WORDS, tmp_path))
    before = await bob.ok("GET", "/api/v1/billing/balance")
    async with socket_of(server, bob) as ws:
        asked = await bob.post(transcribe_path(chat["id"], note["id"]))
        assert asked.status_code == 202
        failed = await ws.wait_for("ai_reply_failed", timeout=10)
    assert failed["reply_id"] == asked.json()["id"]
    assert failed["reply_to_message_id"] == note["id"]
    assert failed["code"] == "upstream_error"
    assert await bob.ok("GET", "/api/v1/billing/balance") == before
    shown = next(m for m in await history(bob, chat["id"]) if m["id"] == note["id"])
    assert shown["transcript"] is None


async def test_a_transcript_without_balance_is_refused_and_nothing_changes(
    own_app: OwnAppFactory, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    audio = voice_note(WORDS, tmp_path)
    async with own_app(billing_starting_grant_micros=0) as app:
        alice = await app.sign_up(421, "Alice")
        bob = await app.sign_up(422, "Bob")
        carol = await app.sign_up(423, "Carol")
        chat = await alice.private_chat_with(bob)
        _, note = await send_voice(alice, chat["id"], audio)
        text = await alice.send(chat["id"], "not a voice note")
        refused = await bob.post(transcribe_path(chat["id"], note["id"]))
        assert refused.status_code == 402
        assert refused.json()["code"] == "insufficient_balance"
        no_audio = await bob.post(transcribe_path(chat["id"], text["id"]))
        assert (no_audio.status_code, no_audio.json()["code"]) == (400, "no_audio")
        stranger = await carol.post(transcribe_path(chat["id"], note["id"]))
        assert stranger.status_code == 404
        assert (await bob.post(transcribe_path(chat["id"], 10**12))).status_code == 404
        async with app.context.sessionmaker() as session:
            jobs = list(await session.scalars(select(AiReply)))
        assert jobs == []
        shown = next(m for m in await history(bob, chat["id"]) if m["id"] == note["id"])
        assert shown["transcript"] is None
    assert transcriptions(fake_llm) == []


async def test_with_voice_replies_on_the_ai_also_answers_with_a_voice_note(
    server: LiveServer,
    alice: ApiUser,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    answer = "**Lisbon** is lovely in spring.\n\n```python\nprint('skip me')\n```\nSee [the guide](https://x.example)."
    fake_llm.script(FakeReply(text=answer))
    chat_id = await open_ai_chat(alice)
    settings = await set_chat_ai(alice, chat_id, voice_replies=True)
    assert settings["voice_replies"] is True
    assert (await alice.ok("GET", f"/api/v1/chats/{chat_id}/ai"))["voice_replies"] is True
    async with socket_of(server, alice) as ws:
        question = await alice.send(chat_id, "Where should I travel?")
        frames = await frames_until(
            ws, lambda fs: len(bot_messages(fs)) == 2 and has("message_transcribed")(fs)
        )
    reply_id = first(frames, "ai_reply_done")["reply_id"]
    text, spoken = bot_messages(frames)
    transcribed = first(frames, "message_transcribed")
    words = speakable(answer)
    assert words == "Lisbon is lovely in spring.\n\nSee the guide."
    assert text["text"] == answer
    assert text["ai"]["reply_id"] == reply_id
    assert spoken["message_type"] == "voice"
    assert spoken["reply_to_message_id"] == question["id"]
    (item,) = spoken["media"]
    assert (item["kind"], item["mime_type"]) == ("voice", "audio/ogg")
    assert item["duration"] > 0
    assert (transcribed["message_id"], transcribed["transcript"]) == (spoken["id"], words)
    (said,) = speeches(fake_llm)
    assert (said.json["input"], said.json["voice"]) == (words, "alloy")
    assert said.json["model"] == TTS.vendor_model
    row = await reply_row(sessionmaker, reply_id)
    assert row.speech_characters == len(words)
    tokens = cost_micros(GPT, row.input_tokens, row.output_tokens)
    assert row.cost_micros == tokens + speech_cost(TTS, len(words))
    await set_chat_ai(alice, chat_id, voice_replies=False)


async def test_a_failed_voice_keeps_the_text_answer_and_says_so(
    server: LiveServer,
    alice: ApiUser,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    fake_llm.script(FakeReply(text="Still here in text."), FakeReply(status=500))
    chat_id = await open_ai_chat(alice)
    await set_chat_ai(alice, chat_id, voice_replies=True)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "Say it aloud")
        frames = await frames_until(
            ws, lambda fs: bool(bot_messages(fs)) and has("ai_voice_failed")(fs)
        )
    failed = first(frames, "ai_voice_failed")
    reply_id = first(frames, "ai_reply_done")["reply_id"]
    assert (failed["reply_id"], failed["chat_id"]) == (reply_id, chat_id)
    assert isinstance(failed["code"], str)
    assert isinstance(failed["message"], str)
    (answer,) = bot_messages(frames)
    assert answer["text"] == "Still here in text."
    assert len(speeches(fake_llm)) == 1
    messages = await history(alice, chat_id)
    assert [m["message_type"] for m in messages] == ["text", "text"]
    row = await reply_row(sessionmaker, reply_id)
    assert row.speech_characters == 0
    assert row.cost_micros == cost_micros(GPT, row.input_tokens, row.output_tokens)
    await set_chat_ai(alice, chat_id, voice_replies=False)


async def test_voice_replies_setting_is_a_strict_boolean(alice: ApiUser) -> None:
    chat_id = await open_ai_chat(alice)
    for bad in (None, 1, "yes"):
        response = await alice.put(f"/api/v1/chats/{chat_id}/ai", json={"voice_replies": bad})
        assert response.status_code == 422, bad
    assert (await alice.ok("GET", f"/api/v1/chats/{chat_id}/ai"))["voice_replies"] is False


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        (
            "# Plan\n\n- **Fly** on _Friday_\n- Stay ~~two~~ three nights",
            "Plan\n\nFly on Friday\nStay two three nights",
        ),
        ("| City | Temp |\n|---|---|\n| Lisbon | 21 |", "City Temp\nLisbon 21"),
        ("> quoted `code` and ***both***\n\n---\nafter", "quoted code and both\n\nafter"),
        ("```\nonly code\n```", ""),
        ("Use <b>no</b> tags ![a cat](https://x.example/c.png)", "Use no tags a cat"),
    ],
)
def test_an_answer_is_spoken_as_plain_words(markdown: str, spoken: str) -> None:
    assert speakable(markdown) == spoken
