"""The fake Bot API's files, through the real aiogram Bot: getFile and the download path a
user's voice note is fetched from, and sendVoice's multipart upload."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

from tests.support.fake_telegram.fake import FakeTelegram
from tests.support.fake_telegram.updates import tg_user
from tests.support.voices import voice_note

ALICE = tg_user(1101, "Alice", "alice")


async def test_a_stored_file_is_found_and_downloaded(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot, tmp_path: Path
) -> None:
    audio = voice_note("hello", tmp_path)
    stored = fake_telegram.store_file(audio, "voice", "oga")
    found = await fake_telegram_bot.get_file(stored["file_id"])
    assert found.file_size == len(audio)
    assert found.file_path is not None
    assert found.file_path.startswith("voice/")
    downloaded = io.BytesIO()
    await fake_telegram_bot.download(stored["file_id"], destination=downloaded)
    assert downloaded.getvalue() == audio
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await fake_telegram_bot.get_file("nope")


async def test_send_voice_takes_an_ogg_opus_upload_only(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot, tmp_path: Path
) -> None:
    audio = voice_note("hello", tmp_path)
    sent = await fake_telegram_bot.send_voice(
        ALICE.id, BufferedInputFile(audio, "voice.ogg"), duration=1
    )
    assert sent.voice is not None
    assert (sent.voice.mime_type, sent.voice.file_size) == ("audio/ogg", len(audio))
    assert fake_telegram.messages[(ALICE.id, sent.message_id)]["voice"]["duration"] == 1
    again = io.BytesIO()
    await fake_telegram_bot.download(sent.voice.file_id, destination=again)
    assert again.getvalue() == audio
    with pytest.raises(TelegramBadRequest, match="VOICE_MESSAGES_FORBIDDEN_OR_INVALID_FORMAT"):
        await fake_telegram_bot.send_voice(ALICE.id, BufferedInputFile(b"ID3 not opus", "x.mp3"))
