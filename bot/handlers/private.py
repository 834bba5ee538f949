"""The private chat with the bot: the user's direct AI chat, the same one the Mini App shows."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageGenerationStopped,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext, app_button, parse_switch
from bot.files import store_telegram_file
from bot.sounds import store_sound
from core.errors import AppError
from models import Chat, MediaKind, User
from services import conversation
from services.ai import replies
from services.ai.settings import update_ai_settings
from services.chats import invitations, lifecycle
from services.messages import MessageDraft
from services.telegram_groups import message_for_telegram

HELP = (
    "Write to me, or send a voice note, and I answer: this chat is the same conversation as "
    "the AI chat in the app.\n\n"
    "Send a photo and I look at it (with a model that sees images).\n\n"
    "/image <what> — draw a picture\n"
    "/new — start a fresh conversation\n"
    "/model — choose the AI model\n"
    "/persona <text> — how the AI should behave (/persona reset to clear)\n"
    "/voice — also answer with a voice note (again to stop)\n"
    "/stop — stop the answer being written\n"
    "/balance — what you have left\n"
    "/topup — buy credits with Telegram Stars\n"
    "/help — this text"
)


async def _ai_chat(ctx: BotContext, session: AsyncSession, user: User) -> Chat:
    runtime = ctx.runtime
    if runtime is None:
        raise AppError("The AI is not configured on this server", code="ai_not_configured")
    return await lifecycle.get_or_create_ai_chat(session, user, await runtime.bot_user(session))


async def start(
    message: Message, command: CommandObject, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    payload = command.args or ""
    text = f"Hi, {user.first_name}! I'm your AI assistant. Write to me here, or open the app."
    start_param: str | None = None
    if payload.startswith("join_"):
        try:
            joined = await invitations.join_by_invite_link(
                session, user, payload.removeprefix("join_")
            )
        except AppError:
            text = "This invite link is no longer valid."
        else:
            text = f"You joined «{joined.title}»."
            start_param = f"chat_{joined.id}"
    elif payload.startswith("chat_") and payload.removeprefix("chat_").isdigit():
        start_param = payload
        text = "Open the chat in the app:"
    await message.answer(
        text, reply_markup=app_button(ctx.settings.webapp_url, "Open the app", start_param)
    )


async def help_(message: Message) -> None:
    await message.answer(HELP)


async def new_conversation(
    message: Message, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    await replies.reset_context(session, await _ai_chat(ctx, session, user))
    await message.answer("Started a new conversation: I forgot what we said before.")


async def choose_model(
    message: Message, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    runtime = ctx.runtime
    models = runtime.catalogue.usable() if runtime else []
    if not models:
        await message.answer("No AI model is configured on this server.")
        return
    current = (await _ai_chat(ctx, session, user)).ai_model
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=("✓ " if model.id == current else "") + model.display_name,
                    callback_data=f"model:{model.id}"[:64],
                )
            ]
            for model in models
        ]
    )
    await message.answer("Choose the model for our chat:", reply_markup=keyboard)


async def model_chosen(
    query: CallbackQuery, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    model_id = (query.data or "").removeprefix("model:")
    chat = await _ai_chat(ctx, session, user)
    settings = await update_ai_settings(session, ctx.runtime, user, chat.id, {"model": model_id})
    await query.answer(f"Model: {settings.model}")
    if isinstance(query.message, Message):
        await query.message.edit_text(f"Model set to {settings.model}.")


async def persona(
    message: Message, command: CommandObject, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    chat = await _ai_chat(ctx, session, user)
    text = (command.args or "").strip()
    if not text:
        await message.answer(f"Current persona: {chat.ai_persona or 'the default assistant'}.")
        return
    value = None if text.lower() == "reset" else text
    await update_ai_settings(session, ctx.runtime, user, chat.id, {"persona": value})
    await message.answer("Persona cleared." if value is None else "Persona saved.")


async def voice_replies(
    message: Message, command: CommandObject, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """`/voice` turns voice replies on or off (`/voice on`, `/voice off` say which)."""
    chat = await _ai_chat(ctx, session, user)
    wanted = parse_switch(command.args, current=chat.ai_voice_replies)
    if wanted is None:
        await message.answer("Use /voice, /voice on or /voice off.")
        return
    await update_ai_settings(session, ctx.runtime, user, chat.id, {"voice_replies": wanted})
    await message.answer(
        "Voice replies on: I also answer with a voice note."
        if wanted
        else "Voice replies off: I answer in text only."
    )


async def _cancel_reply(ctx: BotContext, session: AsyncSession, user: User, reply_id: int) -> bool:
    try:
        reply = await replies.request_cancel(session, user, reply_id)
    except AppError:
        return False
    if ctx.runner is not None:
        ctx.runner.cancel_locally(reply.id)
    return True


async def stop(message: Message, ctx: BotContext, session: AsyncSession, user: User) -> None:
    running = await replies.active_reply(session, (await _ai_chat(ctx, session, user)).id)
    if running is None or not await _cancel_reply(ctx, session, user, running.id):
        await message.answer("Nothing to stop.")
        return
    await message.answer("Stopped.")


async def stopped_by_telegram(
    event: MessageGenerationStopped, ctx: BotContext, session: AsyncSession
) -> None:
    """Telegram's own stop button on a draft: the draft id is the reply id, and the private
    chat's id is the user's Telegram id (the update names no sender)."""
    user = await session.scalar(select(User).where(User.telegram_id == event.chat.id))
    if user is not None:
        await _cancel_reply(ctx, session, user, event.draft_id)


async def balance(message: Message, ctx: BotContext, session: AsyncSession, user: User) -> None:
    runtime = ctx.runtime
    if runtime is None:
        await message.answer("The AI is not configured on this server.")
        return
    await message.answer(await runtime.quota.describe(session, user))


async def chat_with_ai(
    message: Message, bot: Bot, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """Any other text, or a voice note, audio file or round video (transcribed, then answered),
    is a message in the user's direct AI chat."""
    sounds = await store_sound(bot, ctx, session, user, message)
    await _post(message, ctx, session, user, message.text or message.caption, media_ids=sounds)


async def image_to_ai(
    message: Message, bot: Bot, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """A photo, or an image sent as a file, is a message in the user's direct AI chat: the
    image stored as our media, its caption the text."""
    if message.photo:
        file_id, kind, name = message.photo[-1].file_id, MediaKind.PHOTO, None
    elif message.document is not None:
        file_id, kind, name = message.document.file_id, None, message.document.file_name
    else:
        return
    media = await store_telegram_file(bot, ctx, session, user, file_id, kind=kind, filename=name)
    await _post(message, ctx, session, user, message.caption, media_ids=[media.id])


async def _post(
    message: Message,
    ctx: BotContext,
    session: AsyncSession,
    user: User,
    text: str | None,
    *,
    media_ids: list[int] | None = None,
) -> None:
    chat = await _ai_chat(ctx, session, user)
    reply_to = None
    if message.reply_to_message is not None:
        reply_to = await message_for_telegram(session, chat.id, message.reply_to_message.message_id)
    draft = MessageDraft(
        text=text,
        reply_to_message_id=reply_to,
        telegram_message_id=message.message_id,
        media_ids=media_ids or (),
    )
    await conversation.post_message(session, user, chat.id, draft, ai=ctx.runtime, limits=None)


def create_router() -> Router:
    """A fresh router per Dispatcher (an aiogram router attaches to one only)."""
    router = Router(name="private")
    router.message.filter(F.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(new_conversation, Command("new"))
    router.message.register(choose_model, Command("model"))
    router.callback_query.register(model_chosen, F.data.startswith("model:"))
    router.message.register(persona, Command("persona"))
    router.message.register(voice_replies, Command("voice"))
    router.message.register(stop, Command("stop"))
    router.stopped_message_generation.register(stopped_by_telegram)
    router.message.register(balance, Command("balance"))
    router.message.register(chat_with_ai, F.text | F.voice | F.audio | F.video_note)
    router.message.register(image_to_ai, F.photo)
    router.message.register(image_to_ai, F.document.mime_type.startswith("image/"))
    return router
