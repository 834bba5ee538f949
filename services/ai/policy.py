"""When the AI participant answers, and queueing its reply.

A reply is a row in `ai_replies` created in the same transaction as the message that asked for
it, so it is as durable as that message. `workers.ai_runner` executes the jobs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, overload

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import (
    BadRequest,
    Conflict,
    PaymentRequired,
    ServiceUnavailable,
    TooManyRequests,
)
from core.outbox import stage
from llm.catalogue import ModelInfo
from models import AiJobKind, AiMode, AiReply, Assistant, Chat, ChatType, Message, User
from services.access import find_membership
from services.ai import pricing, tools
from services.ai.commands import addresses_bot, image_prompt, is_command, job_kind
from services.ai.context import build_request, prompt_tokens
from services.ai.jobs import wake_envelope
from services.ai.runtime import AiRuntime, chat_assistant, temperature_for
from services.ai.vision import has_images
from services.billing.quota import WorstCase
from services.knowledge.answering import sources_allowance


def effective_mode(chat: Chat) -> AiMode:
    return mode_of(chat.type, chat.ai_mode)


def mode_of(chat_type: ChatType, ai_mode: AiMode | None) -> AiMode:
    """When the AI answers in a chat of this type and setting. The `post_message` function
    (migration 0009) knows the one rule that matters to it: ALWAYS for AI chats and groups set
    to always."""
    if chat_type == ChatType.AI:
        return AiMode.ALWAYS
    if chat_type == ChatType.PRIVATE:
        return AiMode.OFF
    return ai_mode or AiMode.MENTION


def mentions_bot(text: str | None, bot_username: str | None) -> bool:
    if not text:
        return False
    if is_command(text):
        return addresses_bot(text, bot_username)
    if not bot_username:
        return False
    pattern = rf"(?<![\w@])@{re.escape(bot_username)}(?!\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


async def _replies_to_bot(session: AsyncSession, message: Message, bot_user_id: int) -> bool:
    if message.reply_to_id is None:
        return False
    sender = await session.scalar(
        select(Message.sender_id).where(
            Message.chat_id == message.chat_id, Message.id == message.reply_to_id
        )
    )
    return sender == bot_user_id


async def _takes_part(session: AsyncSession, chat: Chat, bot_user_id: int) -> bool:
    """A group hears the AI only once the bot was added to it as a member."""
    if chat.type != ChatType.GROUP:
        return True
    return await find_membership(session, chat.id, bot_user_id) is not None


async def wants_reply(
    session: AsyncSession, ai: AiRuntime, chat: Chat, message: Message, sender: User
) -> bool:
    """Whether the AI answers this message (never to a bot: no loops)."""
    if sender.is_bot or sender.telegram_id == ai.bot_telegram_id:
        return False
    mode = effective_mode(chat)
    if mode == AiMode.OFF:
        return False
    if chat.type == ChatType.AI:
        return True
    addressed = mode == AiMode.ALWAYS or mentions_bot(message.text, ai.bot_username)
    if not addressed and message.reply_to_id is None:
        return False  # most group messages: decided without a query
    bot_user_id = (await ai.bot_user(session)).id
    if not addressed and not await _replies_to_bot(session, message, bot_user_id):
        return False
    return await _takes_part(session, chat, bot_user_id)


async def _recent_replies(session: AsyncSession, **where: Any) -> int:
    since = datetime.now(UTC) - timedelta(minutes=1)
    statement = select(func.count()).select_from(AiReply).where(AiReply.created_at >= since)
    for column, value in where.items():
        statement = statement.where(getattr(AiReply, column) == value)
    return int(await session.scalar(statement) or 0)


@overload
async def request_reply(
    session: AsyncSession,
    ai: AiRuntime,
    chat: Chat,
    trigger: Message,
    requester: User,
    *,
    quiet: Literal[False] = False,
) -> AiReply: ...


@overload
async def request_reply(
    session: AsyncSession,
    ai: AiRuntime,
    chat: Chat,
    trigger: Message,
    requester: User,
    *,
    quiet: bool,
) -> AiReply | None: ...


async def request_reply(
    session: AsyncSession,
    ai: AiRuntime,
    chat: Chat,
    trigger: Message,
    requester: User,
    *,
    quiet: bool = False,
) -> AiReply | None:
    """Queue a reply to `trigger`, paid for by `requester`: an answer, or the picture that
    "/image <prompt>" asks for. With `quiet` (a group that did not address the AI by name), an
    AI that is busy, rate-limited, not configured or over the requester's allowance just stays
    silent. A chat whose assistant was archived is told so."""
    kind = job_kind(trigger.text, ai.bot_username)
    assistant = await chat_assistant(session, chat)
    try:
        if assistant is not None and assistant.archived_at is not None:
            raise Conflict("This assistant was archived by its owner", code="assistant_archived")
        if kind == AiJobKind.TEXT:
            model = ai.model_for(chat, assistant)
        else:
            model = _image_model(ai, trigger)
    except (ServiceUnavailable, BadRequest, Conflict):
        if quiet:
            return None
        raise
    bot_user_id = (await ai.bot_user(session)).id
    if not await _takes_part(session, chat, bot_user_id):
        if quiet:
            return None
        raise BadRequest("The AI is not a member of this group", code="ai_not_member")
    if await _recent_replies(session, requested_by=requester.id) >= ai.user_replies_per_minute:
        if quiet:
            return None
        raise TooManyRequests("Too many AI requests; wait a minute", code="ai_rate_limited")
    if quiet and (
        await _recent_replies(session, chat_id=chat.id) >= ai.chat_always_replies_per_minute
    ):
        return None
    reply = AiReply(
        chat_id=chat.id,
        trigger_message_id=trigger.id,
        requested_by=requester.id,
        surface="telegram" if trigger.telegram_message_id is not None else "app",
        assistant_id=chat.assistant_id,
        kind=kind,
        model=model.id,
        provider=model.provider,
        max_tokens=ai.max_tokens_for(model, assistant) if kind == AiJobKind.TEXT else 0,
    )
    try:
        async with session.begin_nested():
            session.add(reply)
            await session.flush()
    except IntegrityError:
        if quiet:
            return None
        raise Conflict(
            "The AI is still answering in this chat; wait for it or cancel it", code="ai_busy"
        ) from None
    worst = await _worst_case(session, ai, chat, reply, model, bot_user_id, assistant)
    try:
        async with session.begin_nested():
            await ai.quota.reserve(session, reply, worst)
    except PaymentRequired:
        # No reply waits without its reservation. Quiet, in a group: everyone else's messages
        # must not fail because of one allowance.
        await session.delete(reply)
        await session.flush()
        if quiet:
            return None
        raise
    stage(session, wake_envelope(reply.id))
    return reply


def _image_model(ai: AiRuntime, trigger: Message) -> ModelInfo:
    if not image_prompt(trigger.text, ai.bot_username):
        raise BadRequest("Write what to draw after /image", code="image_prompt_required")
    model = tools.image_model(ai)
    if model is None:
        raise ServiceUnavailable(
            "Image generation is not configured", code="ai_images_not_configured"
        )
    return model


async def _worst_case(
    session: AsyncSession,
    ai: AiRuntime,
    chat: Chat,
    reply: AiReply,
    model: ModelInfo,
    bot_user_id: int,
    assistant: Assistant | None,
) -> WorstCase:
    """What the reply may cost; nothing when it only tells that its model cannot see the
    photo it is asked about."""
    blind = reply.kind == AiJobKind.TEXT and not model.vision
    if blind and await has_images(session, chat.id, reply.trigger_message_id):
        return WorstCase(tokens=0, micros=0)
    tokens = 0
    if reply.kind == AiJobKind.TEXT:
        request = await build_request(
            session,
            chat,
            reply.trigger_message_id,
            model,
            bot_user_id=bot_user_id,
            requester_id=reply.requested_by,
            max_tokens=reply.max_tokens,
            temperature=temperature_for(chat, assistant),
            storage=None,
            tools=tools.offered_tools(ai, model),
            assistant=assistant,
        )
        tokens = prompt_tokens(request) + await sources_allowance(session, assistant)
    return await pricing.worst_case(
        session,
        ai,
        chat,
        reply,
        model,
        tokens,
        image_tool=tools.offers_image_tool(ai, model),
    )


async def maybe_reply(
    session: AsyncSession,
    ai: AiRuntime | None,
    chat: Chat,
    message: Message,
    sender: User,
    *,
    addressed: bool | None = None,
) -> AiReply | None:
    """The AI participant's answer to a new message, when it should give one. `addressed` is
    what a front door already knows (Telegram's mention entities); else the text decides."""
    if ai is None:
        return None
    mode = effective_mode(chat)
    if addressed is not None and mode == AiMode.MENTION:
        # Telegram's entities say whether the AI was named; a reply to the AI counts too.
        if sender.is_bot or sender.telegram_id == ai.bot_telegram_id:
            return None
        bot_user_id = (await ai.bot_user(session)).id
        if not (addressed or await _replies_to_bot(session, message, bot_user_id)):
            return None
    elif not await wants_reply(session, ai, chat, message, sender):
        return None
    by_name = chat.type == ChatType.AI or mode == AiMode.MENTION
    return await request_reply(session, ai, chat, message, sender, quiet=not by_name)
