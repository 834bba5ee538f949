"""Voice notes, audio files and round video notes sent to the bot: fetched from Telegram and
kept as the sender's media (`bot.files`), to be transcribed."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import Audio, Message, VideoNote, Voice
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext
from bot.files import store_telegram_file
from models import MediaKind, User


def sound_of(message: Message) -> tuple[Voice | Audio | VideoNote, MediaKind] | None:
    if message.voice is not None:
        return message.voice, MediaKind.VOICE
    if message.audio is not None:
        return message.audio, MediaKind.AUDIO
    if message.video_note is not None:
        return message.video_note, MediaKind.VIDEO
    return None


async def store_sound(
    bot: Bot, ctx: BotContext, session: AsyncSession, user: User, message: Message
) -> list[int]:
    """The message's sound as the user's media: its id, or none for a message without one."""
    found = sound_of(message)
    if found is None:
        return []
    sound, kind = found
    filename = sound.file_name if isinstance(sound, Audio) else None
    media = await store_telegram_file(
        bot, ctx, session, user, sound.file_id, kind=kind, filename=filename
    )
    return [media.id]
