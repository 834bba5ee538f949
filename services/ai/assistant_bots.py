"""Assistants published as their own Telegram bots: the owner's token (checked with Telegram by
the caller, kept encrypted), the bots to serve, and the user's conversation through one. Every
change goes out as news (`services.ai.bot_news`) so that each process starts or stops serving
that bot at once."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from core.outbox import stage
from core.settings import Settings
from core.token_cipher import TokenCipher
from models import Assistant, AssistantBot, Chat, User
from services.ai.assistants import assistant_not_found, owned_assistant, start_chat
from services.ai.bot_news import changed_envelope
from services.ai.runtime import AiRuntime

# What BotFather issues: "<bot id>:<35 url-safe characters>" (checked before any request).
BOT_TOKEN_PATTERN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,64}")


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who a token belongs to, as Telegram's getMe said."""

    telegram_bot_id: int
    username: str


def token_cipher(settings: Settings) -> TokenCipher:
    key = settings.assistant_bot_token_key
    if key is None:
        raise ServiceUnavailable(
            "Publishing assistants as bots needs ASSISTANT_BOT_TOKEN_KEY on this server",
            code="assistant_bots_not_configured",
        )
    return TokenCipher(key.get_secret_value())


def check_token_format(token: str) -> str:
    token = token.strip()
    if not BOT_TOKEN_PATTERN.fullmatch(token):
        raise BadRequest("This is not a Telegram bot token", code="bad_bot_token")
    return token


async def publish_bot(
    session: AsyncSession,
    user: User,
    assistant_id: int,
    identity: BotIdentity,
    token: str,
    cipher: TokenCipher,
    *,
    main_bot_id: int | None,
) -> AssistantBot:
    """The assistant answers as the bot `identity` (replacing the bot it had)."""
    assistant = await owned_assistant(session, user, assistant_id)
    taken = await session.scalar(
        select(AssistantBot.assistant_id).where(
            AssistantBot.telegram_bot_id == identity.telegram_bot_id
        )
    )
    if identity.telegram_bot_id == main_bot_id or taken not in (None, assistant.id):
        raise Conflict("This bot already serves another assistant", code="bot_token_in_use")
    current = await session.scalar(
        select(AssistantBot).where(AssistantBot.assistant_id == assistant.id)
    )
    if current is not None:
        stage(session, changed_envelope(current.telegram_bot_id))
        await session.delete(current)
        await session.flush()
    published = AssistantBot(
        assistant_id=assistant.id,
        telegram_bot_id=identity.telegram_bot_id,
        username=identity.username,
        token_ciphertext=cipher.encrypt(token),
        webhook_secret=secrets.token_urlsafe(32),
    )
    session.add(published)
    await session.flush()
    stage(session, changed_envelope(published.telegram_bot_id))
    return published


async def published_bot(session: AsyncSession, user: User, assistant_id: int) -> AssistantBot:
    assistant = await owned_assistant(session, user, assistant_id)
    published = await session.scalar(
        select(AssistantBot).where(AssistantBot.assistant_id == assistant.id)
    )
    if published is None:
        raise NotFound("This assistant has no bot", code="assistant_bot_not_found")
    return published


async def unpublish_bot(session: AsyncSession, user: User, assistant_id: int) -> None:
    """The assistant's bot stops answering, in every process."""
    published = await published_bot(session, user, assistant_id)
    await session.execute(delete(AssistantBot).where(AssistantBot.id == published.id))
    stage(session, changed_envelope(published.telegram_bot_id))


async def served_bots(session: AsyncSession) -> list[AssistantBot]:
    """Every bot to serve: those of assistants that are not archived."""
    return list(
        await session.scalars(
            select(AssistantBot)
            .join(Assistant, Assistant.id == AssistantBot.assistant_id)
            .where(Assistant.archived_at.is_(None))
        )
    )


async def served_bot(session: AsyncSession, telegram_bot_id: int) -> AssistantBot | None:
    bots = await session.scalars(
        select(AssistantBot)
        .join(Assistant, Assistant.id == AssistantBot.assistant_id)
        .where(AssistantBot.telegram_bot_id == telegram_bot_id, Assistant.archived_at.is_(None))
    )
    return bots.one_or_none()


@dataclass(frozen=True, slots=True)
class BotConversation:
    assistant: Assistant
    chat: Chat


async def conversation_for_bot(
    session: AsyncSession, ai: AiRuntime, user: User, assistant_id: int
) -> BotConversation:
    """The user's conversation with the assistant whose bot they write to: the chat
    `POST /api/v1/assistants/{id}/chat` gives. The bot's token is the assistant's link: a link
    or public assistant answers anyone, a private one only its owner."""
    assistant = await session.get(Assistant, assistant_id)
    if assistant is None:
        raise assistant_not_found()
    chat = await start_chat(session, ai, user, assistant_id, assistant.share_token)
    return BotConversation(assistant, chat)
