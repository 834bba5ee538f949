"""A user's dealings with the AI's replies: look one up, cancel it, ask again, see what they
cost; and the AI's memory of a chat ("/new")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, NotFound
from core.outbox import stage
from models import ACTIVE_REPLY_STATUSES, AiMode, AiReply, AiReplyStatus, Chat, Message, User
from services.access import require_membership, require_message
from services.ai.jobs import wake_envelope
from services.ai.policy import effective_mode, request_reply
from services.ai.runtime import AiRuntime
from services.views.ai import UsageOut


async def get_reply(session: AsyncSession, user: User, reply_id: int) -> AiReply:
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise NotFound("Reply not found", code="reply_not_found")
    await require_membership(session, reply.chat_id, user.id)
    return reply


async def request_cancel(session: AsyncSession, user: User, reply_id: int) -> AiReply:
    """Mark a reply for cancellation; the runner stops it and keeps the partial text."""
    reply = await get_reply(session, user, reply_id)
    if reply.status in ACTIVE_REPLY_STATUSES:
        await session.execute(
            update(AiReply).where(AiReply.id == reply.id).values(cancel_requested=True)
        )
        reply.cancel_requested = True
        stage(session, wake_envelope(reply.id))
    return reply


async def regenerate(session: AsyncSession, ai: AiRuntime, user: User, message_id: int) -> AiReply:
    """A new reply to the same message. Given the AI's own message, it answers that message's
    question again."""
    message, membership = await require_message(session, message_id, user.id)
    if message.sender_id == (await ai.bot_user(session)).id:
        trigger_id = await session.scalar(
            select(AiReply.trigger_message_id).where(AiReply.reply_message_id == message.id)
        )
        if trigger_id is None:
            raise BadRequest("This message is not an AI reply", code="not_regenerable")
        message, membership = await require_message(session, trigger_id, user.id)
    if effective_mode(membership.chat) == AiMode.OFF:
        raise BadRequest("The AI is off in this chat", code="ai_off")
    if message.deleted_at is not None:
        raise BadRequest("The message was deleted", code="message_deleted")
    return await request_reply(session, ai, membership.chat, message, user)


async def usage(session: AsyncSession, user: User, *, days: int) -> list[UsageOut]:
    """The user's AI usage per UTC day and model (replies they paid for)."""
    since = datetime.now(UTC) - timedelta(days=days)
    day = func.date(AiReply.created_at)
    if session.get_bind().dialect.name == "postgresql":
        # date() of a timestamptz is the day in the session's time zone, not necessarily UTC.
        day = func.date(func.timezone("UTC", AiReply.created_at))
    rows = await session.execute(
        select(
            day,
            AiReply.model,
            func.count(),
            func.sum(AiReply.input_tokens),
            func.sum(AiReply.output_tokens),
            func.sum(AiReply.cost_micros),
        )
        .where(
            AiReply.requested_by == user.id,
            AiReply.created_at >= since,
            AiReply.status.in_((AiReplyStatus.DONE, AiReplyStatus.CANCELLED)),
        )
        .group_by(day, AiReply.model)
        .order_by(day, AiReply.model)
    )
    return [
        UsageOut(
            day=str(d),
            model=m,
            replies=int(n),
            input_tokens=int(i or 0),
            output_tokens=int(o or 0),
            cost_micros=int(c or 0),
        )
        for d, m, n, i, o, c in rows
    ]


async def reset_context(session: AsyncSession, chat: Chat) -> None:
    """The AI forgets the chat's history so far ("/new"): its memory starts after now."""
    last = await session.scalar(select(func.max(Message.id)).where(Message.chat_id == chat.id))
    chat.ai_context_from_id = (last or 0) + 1
    await session.flush()


async def active_reply(session: AsyncSession, chat_id: int) -> AiReply | None:
    return await session.scalar(
        select(AiReply).where(AiReply.chat_id == chat_id, AiReply.status.in_(ACTIVE_REPLY_STATUSES))
    )
