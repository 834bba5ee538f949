"""Voice notes, audio files and round video notes sent to the bot: downloaded through the Bot
API and kept as the sender's media, as an upload from the Mini App is."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

from aiogram import Bot
from aiogram.types import Audio, Message, VideoNote, Voice
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PayloadTooLarge
from core.storage import Storage
from models import MediaKind, User
from services.media.config import MediaConfig
from services.media.storage import spool_upload, store_upload

# The Bot API lets a bot download files up to 20 MB.
BOT_API_DOWNLOAD_BYTES = 20 * 1024 * 1024


def sound_of(message: Message) -> tuple[Voice | Audio | VideoNote, MediaKind] | None:
    if message.voice is not None:
        return message.voice, MediaKind.VOICE
    if message.audio is not None:
        return message.audio, MediaKind.AUDIO
    if message.video_note is not None:
        return message.video_note, MediaKind.VIDEO
    return None


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_sound(
    bot: Bot,
    session: AsyncSession,
    storage: Storage,
    config: MediaConfig,
    user: User,
    message: Message,
) -> int | None:
    """The message's sound as the user's media (its id); None for a message without one."""
    found = sound_of(message)
    if found is None:
        return None
    sound, kind = found
    limit = min(config.max_upload_bytes, BOT_API_DOWNLOAD_BYTES)
    if sound.file_size is not None and sound.file_size > limit:
        raise PayloadTooLarge(
            f"The file is larger than {limit} bytes", code="file_too_large", max_bytes=limit
        )
    buffer = io.BytesIO()
    await bot.download(sound.file_id, destination=buffer)
    upload = await spool_upload(_one_chunk(buffer.getvalue()), config)
    filename = sound.file_name if isinstance(sound, Audio) else None
    media = await store_upload(
        session, storage, config, user.id, upload, declared_kind=kind, filename=filename
    )
    return media.id
