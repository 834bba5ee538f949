"""The AI participant: models, per-chat settings, replies, usage, personalisation, and the
seed project's LLM chat routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from core.bounds import Id
from core.db import read_session, unit_of_work
from core.envelope import Envelope, user_route
from core.errors import ServiceUnavailable
from models import ACTIVE_REPLY_STATUSES, AiReply, Message, User
from services import conversation, profile, users
from services.ai import replies, settings, voice
from services.ai.runtime import AiRuntime
from services.messages import MessageDraft
from services.views.ai import AiReplyOut, AiSettingsOut, ModelOut, ProfileOut, UsageOut
from services.views.messages import MessageView, message_view
from webapp_api.context import AppContext
from webapp_api.deps import Caller, Context, CurrentUser, Session
from webapp_api.schemas.ai import (
    AiSettingsUpdate,
    LlmChatMessage,
    LlmChatResult,
    ProfileAnalyzeRequest,
    ProfileUpdate,
)
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1", tags=["ai"], responses=errors(401))

WAIT_FOR_REPLY_SECONDS = 180.0
FrameQueue = asyncio.Queue[dict[str, Any]]


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "the frame's `type`"},
        "data": {"type": "string", "description": "the frame, as JSON"},
    },
}


def _runtime(context: AppContext) -> AiRuntime:
    if context.ai is None:
        raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
    return context.ai


@router.get("/llm/models", response_model=list[ModelOut])
async def list_models(context: Context, _user: CurrentUser) -> list[ModelOut]:
    """The models that are configured and usable, with their prices (micro-credits per million
    tokens)."""
    if context.ai is None:
        return []
    return [ModelOut.model_validate(model) for model in context.ai.catalogue.usable()]


@router.get("/chats/{chat_id}/ai", response_model=AiSettingsOut, responses=errors(404, 422))
async def get_chat_ai(chat_id: Id, user: CurrentUser, session: Session) -> AiSettingsOut:
    return await settings.get_ai_settings(session, user, chat_id)


@router.put(
    "/chats/{chat_id}/ai", response_model=AiSettingsOut, responses=errors(400, 403, 404, 422, 503)
)
async def put_chat_ai(
    chat_id: Id, body: AiSettingsUpdate, user: CurrentUser, session: Session, context: Context
) -> AiSettingsOut:
    """Mode (off, mention, always), model, persona, temperature and `voice_replies` (the AI
    also answers with a voice note); in groups, admins only."""
    return await settings.update_ai_settings(
        session, context.ai, user, chat_id, body.model_dump(exclude_unset=True)
    )


def _reply_out(reply: Any, context: AppContext) -> AiReplyOut:
    live = context.runner.live_text(reply.id) if context.runner else None
    return AiReplyOut.of(reply, live_text=live)


@router.get("/ai/replies/{reply_id}", response_model=AiReplyOut, responses=errors(404, 422))
async def get_ai_reply(
    reply_id: Id, user: CurrentUser, session: Session, context: Context
) -> AiReplyOut:
    """A reply's state and its text so far: a client that joins late starts from here and
    applies the `ai_reply_delta` frames past `len(text)`."""
    return _reply_out(await replies.get_reply(session, user, reply_id), context)


@router.post(
    "/ai/replies/{reply_id}/cancel", response_model=AiReplyOut, responses=errors(404, 409, 422)
)
async def cancel_ai_reply(
    reply_id: Id, user: CurrentUser, session: Session, context: Context
) -> AiReplyOut:
    """Stops the reply; the text produced so far is kept as an incomplete message."""
    reply = await replies.request_cancel(session, user, reply_id)
    if context.runner is not None:
        context.runner.cancel_locally(reply.id)
    return _reply_out(reply, context)


@router.post(
    "/messages/{message_id}/regenerate",
    response_model=AiReplyOut,
    responses=errors(400, 402, 403, 404, 409, 422, 429, 503),
)
async def regenerate_reply(
    message_id: Id, user: CurrentUser, session: Session, context: Context
) -> AiReplyOut:
    """A new AI reply to this message (or, given an AI message, to what it answered)."""
    reply = await replies.regenerate(session, _runtime(context), user, message_id)
    return _reply_out(reply, context)


@router.post(
    "/chats/{chat_id}/messages/{message_id}/transcribe",
    response_model=MessageView,
    responses={
        202: {"model": AiReplyOut, "description": "Queued: `message_transcribed` follows"},
        **errors(400, 402, 404, 422, 503),
    },
)
async def transcribe_message(
    chat_id: Id, message_id: Id, user: CurrentUser, session: Session, context: Context
) -> MessageView | JSONResponse:
    """A voice note's, audio's or video's words. `200` with the message when it has its
    transcript; else `202` with the transcription job (paid by the caller, as a reply is), and
    every member gets `message_transcribed` when it is done."""
    asked = await voice.request_transcription(session, context.ai, user, chat_id, message_id)
    if asked.job is None:
        return await message_view(session, asked.message)
    job = _reply_out(asked.job, context).model_dump(mode="json")
    return JSONResponse(job, status_code=202)


@router.get("/ai/usage", response_model=list[UsageOut], responses=errors(422))
async def ai_usage(
    user: CurrentUser, session: Session, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[UsageOut]:
    """My AI usage per day and model: replies, tokens and cost in micro-credits."""
    return await replies.usage(session, user, days=days)


@router.get("/profile", response_model=ProfileOut)
async def get_profile(user: CurrentUser, session: Session) -> ProfileOut:
    return ProfileOut.of(await profile.get_profile(session, user))


@router.put("/profile", response_model=ProfileOut, responses=errors(400, 422))
async def put_profile(body: ProfileUpdate, user: CurrentUser, session: Session) -> ProfileOut:
    """My values, beliefs, interests, skills, desires and intentions, and whether the AI may
    use them in my direct chat."""
    saved = await profile.save_profile(session, user, enabled=body.enabled, data=body.data)
    return ProfileOut.of(saved)


@router.post(
    "/profile/analyze", response_model=profile.ProfileData, responses=errors(400, 422, 429, 503)
)
async def analyze_profile(
    body: ProfileAnalyzeRequest, _user: Caller, context: Context
) -> profile.ProfileData:
    """Suggestions for my profile from a text of mine; nothing is saved until I PUT it."""
    return await profile.suggest(_runtime(context).catalogue, body.text)


# -- the seed project's LLM chat routes -----------------------------------------------------------


@asynccontextmanager
async def _reply_frames(
    context: AppContext, user_id: int, chat_id: int
) -> AsyncIterator[FrameQueue]:
    """The chat's ai_reply_* frames on the asking user's route, from whichever process runs
    the reply; live before the question is asked."""
    frames: FrameQueue = asyncio.Queue()

    def listen(envelope: Envelope) -> None:
        if envelope.chat_id != chat_id or envelope.seq is not None:
            return
        frame = json.loads(envelope.frame)
        if str(frame.get("type", "")).startswith("ai_reply_"):
            frames.put_nowait(frame)

    unsubscribe = await context.broker.subscribe(user_route(user_id), listen)
    try:
        yield frames
    finally:
        await unsubscribe()


async def _ask(
    context: AppContext, user_id: int, chat_id: int, body: LlmChatMessage
) -> tuple[MessageView, int]:
    """Post the user's message and make sure the AI answers it; returns the reply id."""
    runtime = _runtime(context)
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        user = await users.get_user(session, user_id)
        if body.model is not None:
            await settings.update_ai_settings(
                session, runtime, user, chat_id, {"model": body.model}
            )
        sent, reply = await conversation.ask(
            session,
            user,
            chat_id,
            MessageDraft(text=body.content),
            ai=runtime,
            limits=context.limits,
        )
        return sent.view, reply.id


async def _finished_reply(
    context: AppContext, user: User, reply_id: int, frames: FrameQueue
) -> AiReply:
    """Wait for the reply to end. Frames wake us; the database decides (a frame from another
    process may be lost on the way)."""
    async with asyncio.timeout(WAIT_FOR_REPLY_SECONDS):
        while True:
            async with read_session(context.sessionmaker) as session:
                reply = await replies.get_reply(session, user, reply_id)
            if reply.status not in ACTIVE_REPLY_STATUSES:
                return reply
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(frames.get(), 1.0)


@router.post(
    "/llm/chat/{chat_id}/message",
    response_model=LlmChatResult,
    responses=errors(400, 402, 403, 404, 409, 422, 429, 503),
)
async def llm_chat_message(
    chat_id: Id, body: LlmChatMessage, user: Caller, context: Context
) -> LlmChatResult:
    """Send `content` to the AI in this chat and answer with both messages when it is done."""
    async with _reply_frames(context, user.id, chat_id) as frames:
        user_message, reply_id = await _ask(context, user.id, chat_id, body)
        reply = await _finished_reply(context, user, reply_id, frames)
    ai_message = None
    if reply.reply_message_id is not None:
        async with read_session(context.sessionmaker) as session:
            found = await session.get(Message, (reply.reply_message_id, reply.chat_id))
            ai_message = await message_view(session, found) if found else None
    return LlmChatResult(
        user_message=user_message, ai_message=ai_message, reply=AiReplyOut.of(reply, live_text=None)
    )


@router.post(
    "/llm/chat/{chat_id}/message/stream",
    # Response: no JSON is assumed for 200; the errors before the stream starts are JSON.
    response_class=Response,
    responses={
        200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}},
        **errors(400, 402, 403, 404, 409, 422, 429, 503),
    },
)
async def llm_chat_stream(
    chat_id: Id, body: LlmChatMessage, user: Caller, context: Context
) -> EventStream:
    """The same as server-sent events: `user_message`, then `ai_reply_started`,
    `ai_reply_delta`... (and `ai_reply_tool` around a tool step), and `ai_reply_done` or
    `ai_reply_failed` (the WebSocket's frames)."""
    frames_scope = _reply_frames(context, user.id, chat_id)
    frames = await frames_scope.__aenter__()
    try:
        user_message, reply_id = await _ask(context, user.id, chat_id, body)
    except BaseException:
        await frames_scope.__aexit__(None, None, None)
        raise

    async def events() -> AsyncIterator[bytes]:
        try:
            yield _sse("user_message", user_message.model_dump(mode="json"))
            async with asyncio.timeout(WAIT_FOR_REPLY_SECONDS):
                while True:
                    frame = await frames.get()
                    if frame.get("reply_id") != reply_id:
                        continue
                    yield _sse(frame["type"], frame)
                    if frame["type"] in ("ai_reply_done", "ai_reply_failed"):
                        return
        finally:
            await frames_scope.__aexit__(None, None, None)

    return EventStream(events(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(event: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()
