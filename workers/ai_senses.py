"""The reply runner's ears and voice: what a job hears before it answers (a voice note's words,
or the whole of a transcription job) and the answer spoken where the chat wants voice replies.

Vendor calls happen outside any transaction; each step's writes open a unit of work of their
own and call `services.ai.voice`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import read_session, unit_of_work
from core.envelope import encode_envelope, encode_frame
from core.errors import AppError
from core.storage import Storage
from llm.base import LLMError
from models import AiJobKind, Chat
from services import frames
from services.ai import voice
from services.ai.runtime import AiRuntime
from services.audience import chat_member_ids
from services.media.config import MediaConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Speech:
    """An answer spoken and stored as the AI's voice note (not yet posted)."""

    media_id: int
    audio: bytes  # Ogg/Opus
    words: str


@dataclass(frozen=True, slots=True)
class SpeechFailed:
    code: str
    message: str


class Senses:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        ai: AiRuntime,
        storage: Storage,
        media: MediaConfig,
        *,
        speech_voice: str,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._broker = broker
        self._ai = ai
        self._storage = storage
        self._media = media
        self._speech_voice = speech_voice

    async def hear(self, reply_id: int) -> bool | LLMError:
        """Transcribes what the job must hear first; returns whether that was the whole job
        (a transcription job, now done). A transcription job that cannot hear raises LLMError;
        a reply returns it, to fail where its asker hears of it (Telegram too)."""
        async with read_session(self._sessionmaker) as session:
            hearing = await voice.hearing_for(session, self._ai, reply_id)
        transcript, seconds = None, 0.0
        if hearing.sound is not None and hearing.model is not None:
            sound = hearing.sound
            audio = await voice.read_sound(self._storage, sound)
            client = self._ai.catalogue.media_client(hearing.model)
            try:
                transcript = await client.transcribe(
                    hearing.model, audio, filename=sound.filename, mime_type=sound.mime_type
                )
            except LLMError as exc:
                if hearing.kind == AiJobKind.TRANSCRIPTION:
                    raise
                return LLMError(exc.code, f"The voice note could not be transcribed: {exc.message}")
            seconds = sound.seconds
        elif hearing.kind != AiJobKind.TRANSCRIPTION:
            return False
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            await voice.heard(session, self._ai, reply_id, transcript, seconds)
        return hearing.kind == AiJobKind.TRANSCRIPTION

    async def speak(self, reply_id: int, chat_id: int, text: str) -> Speech | SpeechFailed | None:
        """The answer spoken and stored, where the chat wants voice replies (None where it
        does not). A failure is told to the chat's members and returned: the text answer stands
        whatever happens here."""
        async with read_session(self._sessionmaker) as session:
            chat = await session.get(Chat, chat_id)
            wanted = chat is not None and chat.ai_voice_replies
        model = self._ai.catalogue.media_model("speech") if wanted else None
        words = voice.speakable(text)
        if model is None or not words:
            return None
        try:
            client = self._ai.catalogue.media_client(model)
            audio = await client.speak(model, words, voice=self._speech_voice)
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                media = await voice.store_speech(
                    session, self._ai, self._storage, self._media, reply_id, audio, len(words)
                )
                media_id = media.id
        except (LLMError, AppError) as exc:
            failed = SpeechFailed(exc.code, exc.message)
            logger.warning("AI reply %s: speaking failed: %s", reply_id, exc)
            await self._tell_failure(reply_id, chat_id, failed)
            return failed
        return Speech(media_id, audio, words)

    async def _tell_failure(self, reply_id: int, chat_id: int, error: SpeechFailed) -> None:
        async with read_session(self._sessionmaker) as session:
            members = await chat_member_ids(session, chat_id)
        frame = frames.ai_voice_failed(reply_id, chat_id, code=error.code, message=error.message)
        await self._broker.publish(encode_envelope(members, encode_frame(frame), chat_id=chat_id))
