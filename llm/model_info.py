"""What the catalogue knows of a model, apart from the catalogue itself (so that the clients
that use a model need not import the catalogue that makes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ProviderKind = Literal["openai", "anthropic", "openai_compatible"]
MediaKind = Literal["transcription", "speech", "image"]
ModelKind = Literal["chat", MediaKind, "embedding"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # our id, e.g. "gpt-4o-mini", "claude-haiku-4-5", "ollama/llama3.1"
    provider: ProviderKind
    vendor_model: str  # the name sent to the API
    display_name: str
    # Chat models: tokens, and micro-credits per 1,000,000 tokens (1 credit = 1 USD). Images a
    # vision model sees are input tokens. Embedding models: `input_price` only.
    context_window: int = 0
    max_output_tokens: int = 0
    input_price: int = 0
    output_price: int = 0
    base_url: str | None = None  # openai_compatible servers
    # openai_compatible servers (may be empty for a local Ollama); kept out of repr and logs
    api_key: str | None = field(default=None, repr=False)
    kind: ModelKind = "chat"
    vision: bool = False  # chat: takes images
    tools: bool = False  # chat: calls tools
    audio_minute_price: int = 0  # transcription: micro-credits per minute, counted by the second
    speech_price: int = 0  # speech: micro-credits per 1,000,000 characters
    image_price: int = 0  # image: micro-credits per image
