"""Reply jobs in the database: what the runner (`workers.ai_runner`) does to one, each step in
the caller's unit of work, and how every process's runner is told a job is waiting.

A job goes queued -> running (claimed by one runner, which beats while it streams) -> done,
cancelled or failed. A running job whose runner stopped beating is queued again once, then
failed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.envelope import Envelope, encode_envelope, encode_frame
from core.outbox import stage
from core.storage import Storage
from llm.base import CompletionRequest, LLMError, Usage
from llm.catalogue import ModelInfo
from models import AiJobKind, AiReply, AiReplyStatus, Chat, Message, User
from services import frames
from services.ai.bot_news import bot_of_assistant
from services.ai.commands import image_prompt
from services.ai.context import build_request
from services.ai.pricing import drawn_cost, final_cost
from services.ai.runtime import AiRuntime, chat_assistant, temperature_for
from services.ai.tools import offered_tools, store_drawn
from services.ai.vision import refusal_for
from services.audience import chat_member_ids
from services.knowledge.answering import finish_with_sources, knowledge_prompt
from services.media.config import MediaConfig
from services.messages import TEXT_MAX_LENGTH, MessageDraft, send_message
from services.text_split import split_text

AI_SERVICE = "ai"
# Attempts after which a job whose runner stopped beating fails instead of running again.
MAX_RUNS = 2


def wake_envelope(reply_id: int) -> bytes:
    """Tells every process's runner that a reply job is waiting, or should stop."""
    return encode_envelope([], encode_frame({"reply_id": reply_id}), service=AI_SERVICE)


def woken_reply_id(envelope: Envelope) -> int | None:
    """The job a `wake_envelope` is about; None for any other envelope."""
    if envelope.service != AI_SERVICE:
        return None
    return int(json.loads(envelope.frame)["reply_id"])


async def publish_reply_event(
    session: AsyncSession, chat_id: int, frame: dict[str, Any], *, staged: bool
) -> bytes:
    """An ephemeral ai_reply_* frame (`services.frames`) for every member of the chat. With
    `staged`, it goes out after the session commits; else the caller publishes the returned
    envelope itself."""
    envelope = encode_envelope(
        await chat_member_ids(session, chat_id), encode_frame(frame), chat_id=chat_id
    )
    if staged:
        stage(session, envelope)
    return envelope


async def claim(session: AsyncSession, node: str, surfaces: frozenset[str]) -> int | None:
    """The oldest queued job of these surfaces, now running on `node`; skips jobs another
    runner is claiming at the same moment."""
    now = datetime.now(UTC)
    candidate = (
        select(AiReply.id)
        .where(AiReply.status == AiReplyStatus.QUEUED, AiReply.surface.in_(surfaces))
        .order_by(AiReply.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = await session.scalar(
        update(AiReply)
        .where(AiReply.id == candidate, AiReply.status == AiReplyStatus.QUEUED)
        .values(
            status=AiReplyStatus.RUNNING,
            claimed_by=node,
            heartbeat_at=now,
            started_at=now,
            attempts=AiReply.attempts + 1,
        )
        .returning(AiReply.id)
    )
    return int(claimed) if claimed is not None else None


async def requeue_stale(
    session: AsyncSession, cutoff: datetime, *, running_here: Collection[int]
) -> tuple[list[int], list[int]]:
    """Running jobs that have not beaten since `cutoff`: those run fewer than `MAX_RUNS` times
    are queued again. Returns those and the others, for the caller to `fail` each. The jobs
    `running_here` are not stale whatever their heartbeat says: the caller runs them (a busy
    event loop beats late; taking its job for dead would run it twice at once)."""
    stale = list(
        await session.execute(
            select(AiReply.id, AiReply.attempts).where(
                AiReply.status == AiReplyStatus.RUNNING,
                AiReply.heartbeat_at < cutoff,
                AiReply.id.not_in(running_here),
            )
        )
    )
    retried = [reply_id for reply_id, attempts in stale if attempts < MAX_RUNS]
    if retried:
        await session.execute(
            update(AiReply)
            .where(AiReply.id.in_(retried), AiReply.heartbeat_at < cutoff)
            .values(status=AiReplyStatus.QUEUED, claimed_by=None, text="")
        )
    return retried, [reply_id for reply_id, attempts in stale if attempts >= MAX_RUNS]


async def beat(session: AsyncSession, reply_id: int, node: str, text: str | None) -> bool:
    """The job still runs on `node` (with its `text` so far, when given); returns whether
    someone asked to cancel it."""
    values: dict[str, object] = {"heartbeat_at": datetime.now(UTC)}
    if text is not None:
        values["text"] = text
    cancel = await session.scalar(
        update(AiReply)
        .where(AiReply.id == reply_id, AiReply.claimed_by == node)
        .values(**values)
        .returning(AiReply.cancel_requested)
    )
    return bool(cancel)


@dataclass(frozen=True, slots=True)
class SinkReply:
    """A reply that was asked for in Telegram, and where in Telegram it goes."""

    reply_id: int
    chat_id: int
    telegram_chat_id: int
    is_private: bool
    reply_to_telegram_message_id: int | None
    # The assistant's own bot it was asked through (None: our bot).
    telegram_bot_id: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """What a claimed job needs to run: the prompt (what to draw, for an image job), the
    model, who hears it. `refusal`: the fixed answer instead of asking the model (a photo
    its model cannot see)."""

    reply_id: int
    chat_id: int
    trigger_message_id: int | None
    requester_id: int | None
    kind: AiJobKind
    model: ModelInfo
    request: CompletionRequest
    members: set[int]
    cancel_requested: bool
    sink: SinkReply | None
    refusal: str | None = None
    image_prompt: str = ""


async def load_claimed(
    session: AsyncSession, ai: AiRuntime, storage: Storage, reply_id: int, *, to_telegram: bool
) -> ClaimedJob:
    """Raises LLMError when the job cannot run: its chat is gone, its model no longer offered.
    `to_telegram`: this process streams replies asked for in Telegram back there."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    chat = await session.get(Chat, reply.chat_id)
    if chat is None or not chat.is_active:
        raise LLMError("bad_request", "The chat is gone")
    model = _job_model(ai, reply)
    trigger = (
        await session.get(Message, (reply.trigger_message_id, reply.chat_id))
        if reply.trigger_message_id is not None
        else None
    )
    refusal = None
    request = CompletionRequest(model=model.vendor_model, system="", turns=[], max_tokens=0)
    if reply.kind == AiJobKind.TEXT:
        refusal = await refusal_for(session, ai, model, chat.id, reply.trigger_message_id)
    if reply.kind == AiJobKind.TEXT and refusal is None:
        assistant = await chat_assistant(session, chat)
        request = await build_request(
            session,
            chat,
            reply.trigger_message_id,
            model,
            bot_user_id=(await ai.bot_user(session)).id,
            requester_id=reply.requested_by,
            max_tokens=reply.max_tokens,
            temperature=temperature_for(chat, assistant),
            storage=storage,
            tools=offered_tools(ai, model),
            assistant=assistant,
            knowledge=await knowledge_prompt(session, ai.knowledge, reply, assistant),
        )
    return ClaimedJob(
        reply_id=reply.id,
        chat_id=chat.id,
        trigger_message_id=reply.trigger_message_id,
        requester_id=reply.requested_by,
        kind=reply.kind,
        model=model,
        request=request,
        members=await chat_member_ids(session, chat.id),
        cancel_requested=reply.cancel_requested,
        sink=await _sink_reply(session, reply, chat, trigger) if to_telegram else None,
        refusal=refusal,
        image_prompt=image_prompt(trigger.text if trigger else None, ai.bot_username) or "",
    )


def _job_model(ai: AiRuntime, reply: AiReply) -> ModelInfo:
    """The chat model of a text job, the image model of an image job: still offered."""
    if reply.kind != AiJobKind.IMAGE:
        return ai.catalogue.get(reply.model)
    model = ai.catalogue.media_model("image")
    if model is None or model.id != reply.model:
        raise LLMError("not_configured", f"Model {reply.model!r} is not available")
    return model


async def _sink_reply(
    session: AsyncSession, reply: AiReply, chat: Chat, trigger: Message | None
) -> SinkReply | None:
    """Where in Telegram a reply asked for there goes: the group, or the private chat with the
    user who asked (a user's Telegram id is their private chat's id)."""
    if reply.surface != "telegram":
        return None
    telegram_bot_id = None
    if chat.telegram_chat_id is not None:
        telegram_chat_id, is_private = chat.telegram_chat_id, False
    else:
        # A private conversation with an assistant that has its own bot is held there.
        if chat.assistant_id is not None:
            telegram_bot_id = await bot_of_assistant(session, chat.assistant_id)
        requester = await session.get(User, reply.requested_by) if reply.requested_by else None
        if requester is None:
            return None
        telegram_chat_id, is_private = requester.telegram_id, True
    return SinkReply(
        reply_id=reply.id,
        chat_id=chat.id,
        telegram_chat_id=telegram_chat_id,
        is_private=is_private,
        reply_to_telegram_message_id=trigger.telegram_message_id if trigger else None,
        telegram_bot_id=telegram_bot_id,
    )


async def finish(
    session: AsyncSession,
    ai: AiRuntime,
    reply_id: int,
    model: ModelInfo,
    usage: Usage,
    *,
    text: str,
    cancelled: bool,
    media_ids: Sequence[int] = (),
) -> tuple[list[int], str]:
    """The job ends with `text` (and `media_ids`, shown by its first message; and the footnotes
    of the knowledge it cites): it becomes the AI's messages (several when it is long),
    everything it used is charged (`services.ai.pricing`, and the question's embedding), and
    `ai_reply_done` goes out ahead of them. Returns the messages' ids and the final text."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    text, retrieval_cost = finish_with_sources(ai.knowledge, reply_id, text)
    bot = await ai.bot_user(session)
    # Usage first: the new_message announcing the reply carries it.
    reply.status = AiReplyStatus.CANCELLED if cancelled else AiReplyStatus.DONE
    reply.incomplete = cancelled
    reply.text = text
    reply.input_tokens = usage.input_tokens
    reply.output_tokens = usage.output_tokens
    reply.cost_micros = final_cost(ai, reply, model) + retrieval_cost
    reply.finished_at = datetime.now(UTC)
    await session.flush()
    message_ids: list[int] = []
    reply_to = await _live_message_id(session, reply.trigger_message_id, reply.chat_id)
    parts: list[str | None] = list(split_text(text.strip(), TEXT_MAX_LENGTH))
    if media_ids and not parts:
        parts = [None]
    for part in parts:
        first = not message_ids
        draft = MessageDraft(
            text=part,
            reply_to_message_id=reply_to,
            ai_reply=reply if first else None,
            media_ids=media_ids if first else (),
        )
        sent = await send_message(session, bot, reply.chat_id, draft)
        message_ids.append(sent.view.id)
        reply_to = None
    reply.reply_message_id = message_ids[0] if message_ids else None
    await session.flush()
    await ai.quota.settle(session, reply)
    done = frames.ai_reply_done(
        reply.id, reply.chat_id, message_ids=message_ids, incomplete=cancelled
    )
    envelope = await publish_reply_event(session, reply.chat_id, done, staged=False)
    # Clients see "done" before the persisted new_message it announces.
    stage(session, envelope, first=True)
    return message_ids, text


async def finish_image(
    session: AsyncSession,
    ai: AiRuntime,
    storage: Storage,
    config: MediaConfig,
    reply_id: int,
    model: ModelInfo,
    data: bytes,
) -> list[int]:
    """An image job ends with the picture it drew: stored as the AI's media and posted as its
    reply (charged per image)."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    media = await store_drawn(session, storage, config, reply, await ai.bot_user(session), data)
    no_tokens = Usage(input_tokens=0, output_tokens=0)
    message_ids, _ = await finish(
        session, ai, reply_id, model, no_tokens, text="", cancelled=False, media_ids=[media.id]
    )
    return message_ids


async def _live_message_id(
    session: AsyncSession, message_id: int | None, chat_id: int
) -> int | None:
    if message_id is None:
        return None
    message = await session.get(Message, (message_id, chat_id))
    return message_id if message is not None and message.deleted_at is None else None


async def fail(
    session: AsyncSession,
    ai: AiRuntime,
    reply_id: int,
    code: str,
    message: str,
    *,
    only_if_stale_before: datetime | None = None,
) -> bool:
    """The job fails with `code` unless it already ended (or, with `only_if_stale_before`, beat
    since then): nothing is charged but the pictures it already posted, and `ai_reply_failed`
    goes out. Returns whether it failed now."""
    statement = (
        update(AiReply)
        .where(
            AiReply.id == reply_id,
            AiReply.status.in_((AiReplyStatus.QUEUED, AiReplyStatus.RUNNING)),
        )
        .values(
            status=AiReplyStatus.FAILED,
            error_code=code,
            error_message=message,
            finished_at=datetime.now(UTC),
        )
        .returning(AiReply)
    )
    if only_if_stale_before is not None:
        statement = statement.where(AiReply.heartbeat_at < only_if_stale_before)
    reply = await session.scalar(statement)
    if reply is None:
        return False
    reply.cost_micros = drawn_cost(ai, reply)
    if reply.cost_micros:
        await ai.quota.settle(session, reply)
    else:
        await ai.quota.release(session, reply)
    failed = frames.ai_reply_failed(
        reply_id,
        reply.chat_id,
        reply_to_message_id=reply.trigger_message_id,
        code=code,
        message=message,
    )
    await publish_reply_event(session, reply.chat_id, failed, staged=True)
    return True
