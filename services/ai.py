"""The AI participant's domain actions: when it answers, its per-chat settings, reply jobs.

A reply is a row in `ai_replies` created in the same transaction as the message that asked for
it, so it is as durable as that message. `services.ai_runner` executes the jobs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    TooManyRequests,
)
from core.outbox import encode_envelope, encode_frame, stage
from llm.base import LLMError
from llm.catalogue import Catalogue, ModelInfo
from models import (
    ACTIVE_REPLY_STATUSES,
    AiMode,
    AiReply,
    AiReplyStatus,
    Chat,
    ChatType,
    Message,
    User,
)
from services.access import Membership, find_membership, require_membership, require_message
from services.ai_context import build_request, prompt_tokens
from services.audience import chat_member_ids
from services.billing.quota import QuotaPolicy
from services.chats.members import ensure_member
from services.users import ensure_bot_user

PERSONA_MAX_LENGTH = 4000
AI_SERVICE = "ai"


def wake_envelope(reply_id: int) -> bytes:
    """Tells every process's runner that a reply job is waiting, or should stop."""
    return encode_envelope([], encode_frame({"reply_id": reply_id}), service=AI_SERVICE)


@dataclass(slots=True)
class AiRuntime:
    """The AI participant's configuration in one process."""

    catalogue: Catalogue
    quota: QuotaPolicy
    bot_telegram_id: int
    bot_name: str
    bot_username: str | None
    max_reply_tokens: int
    user_replies_per_minute: int
    chat_always_replies_per_minute: int

    def model_for(self, chat: Chat) -> ModelInfo:
        try:
            if chat.ai_model:
                return self.catalogue.get(chat.ai_model)
            default = self.catalogue.default()
        except LLMError as exc:
            raise ServiceUnavailable(exc.message, code="ai_not_configured") from None
        if default is None:
            raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
        return default

    def max_tokens_for(self, model: ModelInfo) -> int:
        return min(model.max_output_tokens, self.max_reply_tokens)

    async def bot_user(self, session: AsyncSession) -> User:
        """The AI's own user row (created when missing; no write when it is as it should be)."""
        return await ensure_bot_user(
            session, self.bot_telegram_id, self.bot_name, username=self.bot_username
        )


def effective_mode(chat: Chat) -> AiMode:
    if chat.type == ChatType.AI:
        return AiMode.ALWAYS
    if chat.type == ChatType.PRIVATE:
        return AiMode.OFF
    return chat.ai_mode or AiMode.MENTION


def mentions_bot(text: str | None, bot_username: str | None) -> bool:
    if not text:
        return False
    command = re.match(r"^/ask(?:@(\w+))?(?:\s|$)", text, flags=re.IGNORECASE)
    if command is not None:
        # "/ask@other_bot" is a command for another bot of the group.
        addressee = command.group(1)
        return addressee is None or addressee.lower() == (bot_username or "").lower()
    if not bot_username:
        return False
    pattern = rf"(?<![\w@])@{re.escape(bot_username)}(?!\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


async def _replies_to_bot(session: AsyncSession, message: Message, bot_user_id: int) -> bool:
    if message.reply_to_id is None:
        return False
    sender = await session.scalar(
        select(Message.sender_id).where(Message.id == message.reply_to_id)
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


async def request_reply(
    session: AsyncSession,
    ai: AiRuntime,
    chat: Chat,
    trigger: Message,
    requester: User,
    *,
    quiet: bool = False,
) -> AiReply | None:
    """Queue a reply to `trigger`, paid for by `requester`. With `quiet` (a group that did not
    address the AI by name), an AI that is busy, rate-limited, not configured or over the
    requester's allowance just stays silent."""
    try:
        model = ai.model_for(chat)
    except ServiceUnavailable:
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
        model=model.id,
        provider=model.provider,
        max_tokens=ai.max_tokens_for(model),
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
    request = await build_request(
        session,
        chat,
        trigger.id,
        model,
        bot_user_id=bot_user_id,
        requester_id=requester.id,
        max_tokens=reply.max_tokens,
        temperature=chat.ai_temperature,
    )
    try:
        async with session.begin_nested():
            await ai.quota.reserve(session, reply, model, prompt_tokens(request))
    except PaymentRequired:
        if not quiet:
            raise
        # Everyone else's messages in the group must not fail because of one allowance.
        await session.delete(reply)
        await session.flush()
        return None
    stage(session, wake_envelope(reply.id))
    return reply


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


# -- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AiSettings:
    chat_id: int
    mode: AiMode
    model: str | None
    persona: str | None
    temperature: float | None
    can_edit: bool


def ai_settings_of(membership: Membership) -> AiSettings:
    chat = membership.chat
    return AiSettings(
        chat_id=chat.id,
        mode=effective_mode(chat),
        model=chat.ai_model,
        persona=chat.ai_persona,
        temperature=chat.ai_temperature,
        can_edit=_can_edit(membership),
    )


def _can_edit(membership: Membership) -> bool:
    if membership.chat.type == ChatType.AI:
        return True
    return membership.chat.type == ChatType.GROUP and membership.is_manager


async def get_ai_settings(session: AsyncSession, user: User, chat_id: int) -> AiSettings:
    return ai_settings_of(await require_membership(session, chat_id, user.id))


async def update_ai_settings(
    session: AsyncSession,
    ai: AiRuntime | None,
    user: User,
    chat_id: int,
    changes: dict[str, Any],
    *,
    telegram_admin: bool = False,
) -> AiSettings:
    """`telegram_admin`: the bot checked with Telegram that the user administers the group this
    chat mirrors (Telegram's roles rule there, not ours)."""
    membership = await require_membership(session, chat_id, user.id)
    chat = membership.chat
    if chat.type == ChatType.PRIVATE:
        raise BadRequest("The AI takes part in groups and AI chats only", code="not_ai_capable")
    if not (_can_edit(membership) or (telegram_admin and chat.telegram_chat_id is not None)):
        membership.require_manager()
    if "mode" in changes:
        if chat.type == ChatType.AI and changes["mode"] != AiMode.ALWAYS:
            raise BadRequest("The direct AI chat always answers", code="mode_fixed")
        chat.ai_mode = changes["mode"]
        if chat.type == ChatType.GROUP and chat.ai_mode != AiMode.OFF and ai is not None:
            # Turning the AI on is how a Mini App group brings it in (it takes part as a member).
            await ensure_member(session, chat, await ai.bot_user(session))
    if changes.get("model") is not None:
        if ai is None:
            raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
        try:
            chat.ai_model = ai.catalogue.get(changes["model"]).id
        except LLMError:
            raise BadRequest("Unknown or unavailable model", code="unknown_model") from None
    elif "model" in changes:
        chat.ai_model = None
    if "persona" in changes:
        persona = (changes["persona"] or "").strip()
        chat.ai_persona = persona or None
    if "temperature" in changes:
        chat.ai_temperature = changes["temperature"]
    await session.flush()
    return ai_settings_of(membership)


# -- reply jobs -------------------------------------------------------------------------------


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
    reply = await request_reply(session, ai, membership.chat, message, user)
    assert reply is not None
    return reply


async def publish_reply_event(
    session: AsyncSession, chat_id: int, frame: dict[str, Any], *, staged: bool
) -> bytes:
    """An ephemeral ai_reply_* frame for every member of the chat. With `staged`, it goes out
    after the session commits; else the caller publishes the returned envelope itself."""
    envelope = encode_envelope(
        await chat_member_ids(session, chat_id), encode_frame(frame), chat_id=chat_id
    )
    if staged:
        stage(session, envelope)
    return envelope


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: str
    model: str
    replies: int
    input_tokens: int
    output_tokens: int
    cost_micros: int


async def usage(session: AsyncSession, user: User, *, days: int) -> list[UsageRow]:
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
        UsageRow(str(d), m, int(n), int(i or 0), int(o or 0), int(c or 0))
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
