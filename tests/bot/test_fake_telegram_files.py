"""The fake Bot API's sendVoice, through the real aiogram Bot: a multipart Ogg/Opus upload,
downloadable afterwards as Telegram keeps it."""

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
