"""The private chat with an assistant's own bot: the user's conversation with that assistant,
the same chat the Mini App opens for it. The dispatcher of each assistant bot names its
assistant (`assistant_id`, workflow data); messages go in as in the private chat with our bot."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext
from bot.handlers.private import post_to_chat, reset_conversation
from core.errors import AppError
from models import User
from services.ai.assistant_bots import BotConversation, conversation_for_bot

HELP = "Write to me and I answer.\n\n/new — start a fresh conversation\n/help — this text"


async def _conversation(
    ctx: BotContext, session: AsyncSession, user: User, assistant_id: int
) -> BotConversation:
    if ctx.runtime is None:
        raise AppError("The AI is not configured on this server", code="ai_not_configured")
    return await conversation_for_bot(session, ctx.runtime, user, assistant_id)


async def start(
    message: Message, ctx: BotContext, session: AsyncSession, user: User, assistant_id: int
) -> None:
    assistant = (await _conversation(ctx, session, user, assistant_id)).assistant
    await message.answer(assistant.greeting or f"Hi! I'm {assistant.name}. Write to me.")


async def help_(message: Message) -> None:
    await message.answer(HELP)


async def new_conversation(
    message: Message, ctx: BotContext, session: AsyncSession, user: User, assistant_id: int
) -> None:
    conversation = await _conversation(ctx, session, user, assistant_id)
    await reset_conversation(message, session, conversation.chat)


async def chat_with_assistant(
    message: Message, ctx: BotContext, session: AsyncSession, user: User, assistant_id: int
) -> None:
    conversation = await _conversation(ctx, session, user, assistant_id)
    await post_to_chat(message, ctx, session, user, conversation.chat)


def create_router() -> Router:
    """A fresh router per Dispatcher (an aiogram router attaches to one only)."""
    router = Router(name="assistant")
    router.message.filter(F.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(new_conversation, Command("new"))
    router.message.register(chat_with_assistant, F.text)
    return router
