"""Telegram groups with the AI: each group is mirrored as a chat, its messages are history."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatMemberStatus, MessageEntityType
from aiogram.filters import Command, CommandObject
from aiogram.types import ChatMemberUpdated, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext, parse_switch
from bot.sounds import sound_of, store_sound
from core.errors import ServiceUnavailable
from models import AiMode, Chat, User
from services import conversation
from services.ai.settings import update_ai_settings
from services.chats.members import ensure_member
from services.messages import MessageDraft
from services.telegram_groups import (
    group_for_telegram_chat,
    link_telegram_group,
    message_for_telegram,
    migrate_telegram_group,
)

ADMIN_STATUSES = {ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.CREATOR}
PRESENT_STATUSES = {ChatMemberStatus.MEMBER, *ADMIN_STATUSES}


async def _group_chat(
    ctx: BotContext, session: AsyncSession, message: Message, user: User | None
) -> Chat | None:
    chat = await group_for_telegram_chat(session, message.chat.id)
    if chat is None and ctx.runtime is not None:
        chat = await link_telegram_group(
            session,
            message.chat.id,
            message.chat.title or "",
            bot=await ctx.runtime.bot_user(session),
            added_by=None,
        )
    if chat is not None and user is not None:
        await ensure_member(session, chat, user)
    return chat


async def bot_membership_changed(
    event: ChatMemberUpdated, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """Added to a group: mirror it, with whoever added the bot as the chat's owner."""
    if event.chat.type not in ("group", "supergroup") or ctx.runtime is None:
        return
    if event.new_chat_member.status in PRESENT_STATUSES:
        await link_telegram_group(
            session,
            event.chat.id,
            event.chat.title or "",
            bot=await ctx.runtime.bot_user(session),
            added_by=user,
        )


async def migrated_to_supergroup(message: Message, session: AsyncSession) -> None:
    if message.migrate_to_chat_id is None:  # the filter below lets only migrations through
        return
    await migrate_telegram_group(session, message.chat.id, message.migrate_to_chat_id)


async def _is_telegram_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    member = await bot.get_chat_member(chat_id, user_id)
    return member.status in ADMIN_STATUSES


async def _admin_setting(
    message: Message,
    bot: Bot,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
    changes: dict[str, object],
    done: str,
) -> None:
    if message.from_user is None or not await _is_telegram_admin(
        bot, message.chat.id, message.from_user.id
    ):
        await message.reply("Only the group's admins can change the AI's settings.")
        return
    chat = await _group_chat(ctx, session, message, user)
    if chat is None:  # not linked yet, and no AI here to link it with
        raise ServiceUnavailable(
            "The AI is not configured on this server", code="ai_not_configured"
        )
    await update_ai_settings(session, ctx.runtime, user, chat.id, changes, telegram_admin=True)
    await message.reply(done)


async def set_mode(
    message: Message,
    command: CommandObject,
    bot: Bot,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
) -> None:
    value = (command.args or "").strip().lower()
    if value not in {mode.value for mode in AiMode}:
        await message.reply("Use /ai_mode off, /ai_mode mention or /ai_mode always.")
        return
    await _admin_setting(
        message, bot, ctx, session, user, {"mode": AiMode(value)}, f"AI mode: {value}."
    )


async def set_model(
    message: Message,
    command: CommandObject,
    bot: Bot,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
) -> None:
    value = (command.args or "").strip()
    if not value:
        models = ctx.runtime.catalogue.usable() if ctx.runtime else []
        names = ", ".join(model.id for model in models) or "none configured"
        await message.reply(f"Use /model <id>. Models: {names}.")
        return
    await _admin_setting(message, bot, ctx, session, user, {"model": value}, f"Model: {value}.")


async def set_persona(
    message: Message,
    command: CommandObject,
    bot: Bot,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
) -> None:
    value = (command.args or "").strip()
    persona = None if value.lower() in ("", "reset") else value
    await _admin_setting(message, bot, ctx, session, user, {"persona": persona}, "Persona saved.")


async def set_voice_replies(
    message: Message,
    command: CommandObject,
    bot: Bot,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
) -> None:
    chat = await group_for_telegram_chat(session, message.chat.id)
    wanted = parse_switch(command.args, current=chat is not None and chat.ai_voice_replies)
    if wanted is None:
        await message.reply("Use /voice, /voice on or /voice off.")
        return
    done = "Voice replies on." if wanted else "Voice replies off."
    await _admin_setting(message, bot, ctx, session, user, {"voice_replies": wanted}, done)


def addresses_bot(message: Message, bot_id: int, bot_username: str | None) -> bool:
    """Named by a mention entity (offsets are UTF-16 units; aiogram extracts them right), a
    text mention of the bot, /ask or /image."""
    text = message.text or ""
    for entity in message.entities or ():
        if entity.type == MessageEntityType.MENTION and bot_username:
            if entity.extract_from(text).lower() == f"@{bot_username.lower()}":
                return True
        elif entity.type == MessageEntityType.TEXT_MENTION and entity.user is not None:
            if entity.user.id == bot_id:
                return True
        elif entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0:
            command, _, addressee = entity.extract_from(text).lower().partition("@")
            if command in ("/ask", "/image") and addressee in ("", (bot_username or "").lower()):
                return True
    return False


async def group_message(
    message: Message, bot: Bot, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """Every group message becomes history; the AI answers when it is addressed. A voice note
    (audio, round video) counts only as a reply to the AI's message: it is downloaded to be
    transcribed and answered."""
    replied = message.reply_to_message
    if sound_of(message) is not None and (
        replied is None or replied.from_user is None or replied.from_user.id != bot.id
    ):
        return
    chat = await _group_chat(ctx, session, message, user)
    if chat is None:
        return
    runtime = ctx.runtime
    addressed = runtime is not None and addresses_bot(message, bot.id, runtime.bot_username)
    reply_to = None
    if message.reply_to_message is not None:
        reply_to = await message_for_telegram(session, chat.id, message.reply_to_message.message_id)
    draft = MessageDraft(
        text=message.text or message.caption,
        media_ids=await store_sound(bot, ctx, session, user, message),
        reply_to_message_id=reply_to,
        telegram_message_id=message.message_id,
    )
    posted = await conversation.post_message(
        session, user, chat.id, draft, ai=runtime, limits=None, addressed_to_ai=addressed
    )
    if posted.ai_error is not None and addressed:
        await message.reply(f"⚠️ {posted.ai_error.message}")


def create_router() -> Router:
    """A fresh router per Dispatcher (an aiogram router attaches to one only)."""
    router = Router(name="groups")
    router.message.filter(F.chat.type.in_({"group", "supergroup"}))
    router.my_chat_member.register(bot_membership_changed)
    router.message.register(migrated_to_supergroup, F.migrate_to_chat_id)
    router.message.register(set_mode, Command("ai_mode"))
    router.message.register(set_model, Command("model"))
    router.message.register(set_persona, Command("persona"))
    router.message.register(set_voice_replies, Command("voice"))
    router.message.register(group_message, F.text | F.voice | F.audio | F.video_note)
    return router
