"""What an AI job cost once it ran: its tokens, and the audio it heard and the characters it
spoke, each priced by its model in the catalogue (`llm.catalogue`)."""

from __future__ import annotations

from llm.catalogue import ModelInfo, cost_micros, speech_cost, transcription_cost
from models import AiReply
from services.ai.runtime import AiRuntime


def final_cost(ai: AiRuntime, reply: AiReply, model: ModelInfo) -> int:
    """What `reply` cost, from what it used (recorded on it); `model` is the job's model."""
    total = cost_micros(model, reply.input_tokens, reply.output_tokens)
    catalogue = ai.catalogue
    if reply.audio_seconds and (transcriber := catalogue.media_model("transcription")):
        total += transcription_cost(transcriber, reply.audio_seconds)
    if reply.speech_characters and (speaker := catalogue.media_model("speech")):
        total += speech_cost(speaker, reply.speech_characters)
    return total
