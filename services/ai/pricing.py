"""What an AI job may cost before it runs, and what it cost once it ran.

A job's hold covers its worst case: the prompt and `max_tokens` of output, the images it may
draw (a `/image` job draws one; a text job offered the image tool up to `MAX_TOOL_IMAGES`), the
transcription of the voice note it answers when that has no transcript yet, and speaking the
longest answer aloud where the chat wants voice replies. What it finally costs is priced from
what it used, as recorded on the job: tokens, audio seconds, characters spoken, images drawn.
Each is priced by its model in the catalogue (`llm.catalogue`).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm.catalogue import (
    ModelInfo,
    cost_micros,
    image_cost,
    speech_cost,
    transcription_cost,
)
from models import AiJobKind, AiReply, Chat, Media, MediaKind, Message, MessageMedia
from services.ai.runtime import AiRuntime
from services.billing.quota import WorstCase

# Images the model may draw with the image tool in one reply.
MAX_TOOL_IMAGES = 2
# A token of an answer is about this many characters when spoken.
SPEECH_CHARACTERS_PER_TOKEN = 4
# What a transcription model hears: voice notes, audio files, round video notes.
TRANSCRIBED_KINDS = (MediaKind.VOICE, MediaKind.AUDIO, MediaKind.VIDEO)


async def untranscribed_seconds(session: AsyncSession, message_id: int, chat_id: int) -> float:
    """How long the audio of a message without a transcript is (0 when it has none or a
    transcript already)."""
    message = await session.get(Message, (message_id, chat_id))
    if message is None or message.transcript is not None:
        return 0.0
    seconds = await session.scalar(
        select(func.coalesce(func.sum(Media.duration), 0.0))
        .join(MessageMedia, MessageMedia.media_id == Media.id)
        .where(
            MessageMedia.message_id == message_id,
            MessageMedia.chat_id == chat_id,
            Media.kind.in_(TRANSCRIBED_KINDS),
        )
    )
    return float(seconds or 0.0)


async def worst_case(
    session: AsyncSession,
    ai: AiRuntime,
    chat: Chat,
    reply: AiReply,
    model: ModelInfo,
    prompt_tokens: int,
    *,
    image_tool: bool,
) -> WorstCase:
    """The most `reply` (not yet run) may cost. `model` is the job's model (an image model for
    an image job); `image_tool`: a text job is offered the image tool."""
    if reply.kind == AiJobKind.IMAGE:
        return WorstCase(tokens=0, micros=image_cost(model, 1))
    micros = cost_micros(model, prompt_tokens, reply.max_tokens)
    image_model = ai.catalogue.media_model("image")
    if image_tool and image_model is not None:
        micros += image_cost(image_model, MAX_TOOL_IMAGES)
    transcriber = ai.catalogue.media_model("transcription")
    if transcriber is not None and reply.trigger_message_id is not None:
        seconds = await untranscribed_seconds(session, reply.trigger_message_id, reply.chat_id)
        micros += transcription_cost(transcriber, seconds)
    speaker = ai.catalogue.media_model("speech")
    if speaker is not None and chat.ai_voice_replies:
        micros += speech_cost(speaker, reply.max_tokens * SPEECH_CHARACTERS_PER_TOKEN)
    return WorstCase(tokens=prompt_tokens + reply.max_tokens, micros=micros)


def final_cost(ai: AiRuntime, reply: AiReply, model: ModelInfo) -> int:
    """What `reply` cost, from what it used (recorded on it); `model` is the job's model."""
    total = cost_micros(model, reply.input_tokens, reply.output_tokens)
    if reply.kind == AiJobKind.IMAGE:
        return total + image_cost(model, reply.images_generated)
    catalogue = ai.catalogue
    if reply.audio_seconds and (transcriber := catalogue.media_model("transcription")):
        total += transcription_cost(transcriber, reply.audio_seconds)
    if reply.speech_characters and (speaker := catalogue.media_model("speech")):
        total += speech_cost(speaker, reply.speech_characters)
    if reply.images_generated and (image_model := catalogue.media_model("image")):
        total += image_cost(image_model, reply.images_generated)
    return total


def drawn_cost(ai: AiRuntime, reply: AiReply) -> int:
    """What the pictures a failed reply already posted cost (they stay in the chat)."""
    image_model = ai.catalogue.media_model("image") if reply.images_generated else None
    return image_cost(image_model, reply.images_generated) if image_model else 0
