"""The AI's ears and voice: voice notes, audio files and round video notes transcribed (before
the AI answers one, or on a member's request), and answers spoken where a chat wants voice
replies.

A transcript lives on its message and goes out as the persisted `message_transcribed` event.
Asked for on its own, a transcription is a job of kind `transcription` (run by
`workers.ai_runner`), paid by whoever asked through the same reserve-then-settle ledger as a
reply; heard before a reply, it is part of that reply's job and cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, ServiceUnavailable
from core.outbox import stage
from core.storage import Storage, blob_key
from llm.base import LLMError
from llm.catalogue import ModelInfo
from models import (
    ACTIVE_REPLY_STATUSES,
    AiJobKind,
    AiReply,
    AiReplyStatus,
    Media,
    MediaKind,
    Message,
    MessageMedia,
    User,
)
from services.access import message_not_found, require_membership
from services.ai.jobs import wake_envelope
from services.ai.pricing import TRANSCRIBED_KINDS, final_cost, worst_case
from services.ai.runtime import AiRuntime
from services.events import EventType, record_event
from services.media.config import MediaConfig
from services.media.policy import download_filename
from services.media.storage import store_generated
from services.messages import MessageDraft, send_message

SPOKEN_FILENAME = "voice.ogg"


async def heard_media(session: AsyncSession, message: Message) -> Media | None:
    """The sound of a message a transcription model can hear (the first, in an album)."""
    return await session.scalar(
        select(Media)
        .join(
            MessageMedia,
            and_(MessageMedia.media_id == Media.id, MessageMedia.chat_id == message.chat_id),
        )
        .where(MessageMedia.message_id == message.id, Media.kind.in_(TRANSCRIBED_KINDS))
        .order_by(MessageMedia.position)
        .limit(1)
    )


async def record_transcript(session: AsyncSession, message: Message, transcript: str) -> None:
    """The message's words, told to every member as `message_transcribed`."""
    message.transcript = transcript
    await session.flush()
    await record_event(
        session,
        message.chat_id,
        EventType.MESSAGE_TRANSCRIBED,
        {"message_id": message.id, "transcript": transcript},
    )


# -- transcription asked for ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptionAsked:
    """The answer to a request: the message when it has its transcript, else the job."""

    message: Message
    job: AiReply | None


async def request_transcription(
    session: AsyncSession, ai: AiRuntime | None, user: User, chat_id: int, message_id: int
) -> TranscriptionAsked:
    """A member asks for a message's transcript: it is there already (nothing charged), or a
    job is queued, its worst case held from the member's balance (402 when they cannot cover
    it). A job already queued for the message is that answer again."""
    membership = await require_membership(session, chat_id, user.id)
    message = await session.get(Message, (message_id, chat_id))
    if message is None:
        raise message_not_found()
    if message.deleted_at is not None:
        raise BadRequest("The message was deleted", code="message_deleted")
    media = await heard_media(session, message)
    if media is None:
        raise BadRequest(
            "Only voice notes, audio and video messages can be transcribed", code="no_audio"
        )
    if message.transcript is not None:
        return TranscriptionAsked(message, None)
    model = ai.catalogue.media_model("transcription") if ai is not None else None
    if ai is None or model is None:
        raise ServiceUnavailable("Transcription is not configured", code="ai_not_configured")
    running = await _active_transcription(session, message)
    if running is not None:
        return TranscriptionAsked(message, running)
    job = AiReply(
        chat_id=chat_id,
        trigger_message_id=message.id,
        requested_by=user.id,
        surface="app",
        kind=AiJobKind.TRANSCRIPTION,
        model=model.id,
        provider=model.provider,
        max_tokens=0,
    )
    try:
        async with session.begin_nested():
            session.add(job)
            await session.flush()
    except IntegrityError:  # asked at the same moment by someone else
        return TranscriptionAsked(message, await _active_transcription(session, message))
    worst = await worst_case(session, ai, membership.chat, job, model, 0, image_tool=False)
    await ai.quota.reserve(session, job, worst)
    stage(session, wake_envelope(job.id))
    return TranscriptionAsked(message, job)


async def _active_transcription(session: AsyncSession, message: Message) -> AiReply | None:
    return await session.scalar(
        select(AiReply).where(
            AiReply.chat_id == message.chat_id,
            AiReply.trigger_message_id == message.id,
            AiReply.kind == AiJobKind.TRANSCRIPTION,
            AiReply.status.in_(ACTIVE_REPLY_STATUSES),
        )
    )


# -- what a job hears first ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sound:
    """A message's sound as a transcription model takes it."""

    key: str  # in storage
    filename: str  # its extension tells the vendor the format
    mime_type: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Hearing:
    """What a claimed job must hear before it goes on: `sound` by `model` (None: nothing)."""

    kind: AiJobKind
    model: ModelInfo | None = None
    sound: Sound | None = None


async def hearing_for(session: AsyncSession, ai: AiRuntime, reply_id: int) -> Hearing:
    """A transcription job hears its message; a text job the voice note it answers, when that
    has no transcript yet (without a transcription model, the AI hears "[voice message]")."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    hearing = Hearing(reply.kind)
    if reply.kind not in (AiJobKind.TEXT, AiJobKind.TRANSCRIPTION):
        return hearing
    message = (
        await session.get(Message, (reply.trigger_message_id, reply.chat_id))
        if reply.trigger_message_id is not None
        else None
    )
    if message is None or message.deleted_at is not None:
        if reply.kind == AiJobKind.TRANSCRIPTION:
            raise LLMError("bad_request", "The message is gone")
        return hearing
    media = await heard_media(session, message) if message.transcript is None else None
    model = ai.catalogue.media_model("transcription")
    if media is None or model is None:
        return hearing
    sound = Sound(
        key=blob_key(media.sha256),
        filename=download_filename(media),
        mime_type=media.mime_type,
        seconds=media.duration or 0.0,
    )
    return Hearing(reply.kind, model, sound)


async def read_sound(storage: Storage, sound: Sound) -> bytes:
    return b"".join([chunk async for chunk in storage.read(sound.key)])


async def heard(
    session: AsyncSession, ai: AiRuntime, reply_id: int, transcript: str | None, seconds: float
) -> None:
    """The job heard its message: the transcript is kept (unless another job's came first) and
    its seconds are the job's to pay. A transcription job ends here, charged."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    if transcript is not None and reply.trigger_message_id is not None:
        message = await session.get(
            Message, (reply.trigger_message_id, reply.chat_id), with_for_update=True
        )
        if message is not None and message.transcript is None and message.deleted_at is None:
            await record_transcript(session, message, transcript.strip())
            reply.audio_seconds = seconds
    if reply.kind != AiJobKind.TRANSCRIPTION:
        await session.flush()
        return
    reply.status = AiReplyStatus.DONE
    reply.text = transcript or ""
    transcriber = ai.catalogue.media_model("transcription")
    reply.cost_micros = final_cost(ai, reply, transcriber) if transcriber is not None else 0
    reply.finished_at = datetime.now(UTC)
    await session.flush()
    await ai.quota.settle(session, reply)


# -- speaking ------------------------------------------------------------------------------------

_FENCED_CODE = re.compile(r"^\s*(```|~~~).*?^\s*\1[^\n]*$", re.MULTILINE | re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]{0,3}>[ \t]?", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}(?:\n|$)", re.MULTILINE)
_TABLE_RULE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*(?:\n|$)", re.MULTILINE
)
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|~~|`+)(?=\S)(.+?)(?<=\S)\1")
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def speakable(markdown: str) -> str:
    """An answer's Markdown as the plain words a voice says: code blocks are left out (read
    aloud they are noise), links keep their text, marks and table rules go."""
    text = _FENCED_CODE.sub(" ", markdown)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    text = _TABLE_RULE.sub("", text)
    text = _RULE.sub("", text)
    for pattern in (_HEADING, _QUOTE, _BULLET):
        text = pattern.sub("", text)
    previous = None
    while previous != text:  # nested emphasis: **_word_**
        previous, text = text, _EMPHASIS.sub(r"\2", text)
    text = text.replace("|", " ")
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


async def store_speech(
    session: AsyncSession,
    ai: AiRuntime,
    storage: Storage,
    config: MediaConfig,
    reply_id: int,
    audio: bytes,
    characters: int,
) -> Media:
    """The spoken answer, stored as the AI's voice note; its characters are the job's to pay
    (before the job is finished and charged)."""
    bot = await ai.bot_user(session)
    media = await store_generated(
        session, storage, config, bot.id, audio, kind=MediaKind.VOICE, filename=SPOKEN_FILENAME
    )
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    reply.speech_characters = characters
    await session.flush()
    return media


async def post_voice_reply(
    session: AsyncSession, ai: AiRuntime, reply_id: int, media_id: int, words: str
) -> int:
    """The AI's voice note, a reply to the message its text answered, with its own words as
    its transcript (nobody pays to transcribe what the AI said). Returns its id."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise LLMError("bad_request", "The reply is gone")
    bot = await ai.bot_user(session)
    trigger = (
        await session.get(Message, (reply.trigger_message_id, reply.chat_id))
        if reply.trigger_message_id is not None
        else None
    )
    reply_to = trigger.id if trigger is not None and trigger.deleted_at is None else None
    draft = MessageDraft(media_ids=[media_id], reply_to_message_id=reply_to)
    sent = await send_message(session, bot, reply.chat_id, draft)
    message = await session.get(Message, (sent.view.id, reply.chat_id))
    if message is not None:
        await record_transcript(session, message, words)
    return sent.view.id
