"""The private chat with an assistant's own bot: the user's conversation with that assistant,
the same chat the Mini App opens for it. The dispatcher of each assistant bot names its
assistant (`assistant_id`, workflow data); what the user sends goes in as in the private chat
with our bot, by the same handlers."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext
from bot.handlers.private import new_conversation, register_conversation
from core.errors import AppError
from models import User
from services.ai.assistant_bots import conversation_for_bot

HELP = (
    "Write to me and I answer. Send a photo and I look at it.\n\n"
    "/new — start a fresh conversation\n"
    "/help — this text"
)


async def start(
    message: Message, ctx: BotContext, session: AsyncSession, user: User, assistant_id: int
) -> None:
    if ctx.runtime is None:
        raise AppError("The AI is not configured on this server", code="ai_not_configured")
    conversation = await conversation_for_bot(session, ctx.runtime, user, assistant_id)
    assistant = conversation.assistant
    await message.answer(assistant.greeting or f"Hi! I'm {assistant.name}. Write to me.")


async def help_(message: Message) -> None:
    await message.answer(HELP)


def create_router() -> Router:
    """A fresh router per Dispatcher (an aiogram router attaches to one only)."""
    router = Router(name="assistant")
    router.message.filter(F.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(new_conversation, Command("new"))
    register_conversation(router)
    return router
