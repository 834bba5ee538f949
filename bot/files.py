"""Files users send the bot, fetched from Telegram (getFile, then the file's download) and
stored as our media, under the same limits as an upload from the Mini App."""

from __future__ import annotations

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext
from models import Media, MediaKind, User
from services.media.storage import spool_upload, store_upload


async def store_telegram_file(
    bot: Bot,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
    file_id: str,
    *,
    kind: MediaKind | None,
    filename: str | None = None,
) -> Media:
    """The file, streamed from Telegram into our storage as `user`'s upload (`kind` None:
    typed from its bytes)."""
    file = await bot.get_file(file_id)
    if file.file_path is None:
        raise ValueError(f"Telegram gave no path for file {file_id}")
    url = bot.session.api.file_url(bot.token, file.file_path)
    upload = await spool_upload(bot.session.stream_content(url), ctx.media)
    return await store_upload(
        session, ctx.storage, ctx.media, user.id, upload, declared_kind=kind, filename=filename
    )
