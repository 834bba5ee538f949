"""The AI's ears, voice and brush at an OpenAI-compatible endpoint, through the official
`openai` SDK: `POST /v1/audio/transcriptions`, `/v1/audio/speech`, `/v1/images/generations`."""

from __future__ import annotations

import base64
from typing import Protocol

import openai

from llm.base import LLMError
from llm.openai_provider import NO_API_KEY
from llm.openai_provider import _api_error as api_error
from llm.openai_provider import _connection_error as connection_error


class ModelInfo(Protocol):
    """What a media call needs of a catalogue entry (`llm.catalogue.ModelInfo`)."""

    @property
    def vendor_model(self) -> str: ...


class MediaClient:
    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_API_KEY, base_url=base_url, max_retries=0, timeout=timeout
        )

    async def transcribe(
        self, model: ModelInfo, audio: bytes, *, filename: str, mime_type: str
    ) -> str:
        """The words of `audio`; its `filename`'s extension tells the server the format."""
        try:
            result = await self._client.audio.transcriptions.create(
                model=model.vendor_model, file=(filename, audio, mime_type)
            )
        except openai.APIConnectionError as exc:
            raise connection_error(exc, started=False) from exc
        except openai.APIError as exc:
            raise api_error(exc) from exc
        return result.text.strip()

    async def speak(self, model: ModelInfo, text: str, *, voice: str) -> bytes:
        """`text` spoken, as Ogg/Opus (what Telegram plays as a voice note)."""
        try:
            response = await self._client.audio.speech.create(
                model=model.vendor_model, input=text, voice=voice, response_format="opus"
            )
        except openai.APIConnectionError as exc:
            raise connection_error(exc, started=False) from exc
        except openai.APIError as exc:
            raise api_error(exc) from exc
        return response.content

    async def generate_image(self, model: ModelInfo, prompt: str) -> bytes:
        try:
            result = await self._client.images.generate(
                model=model.vendor_model, prompt=prompt, n=1, response_format="b64_json"
            )
        except openai.APIConnectionError as exc:
            raise connection_error(exc, started=False) from exc
        except openai.APIError as exc:
            raise api_error(exc) from exc
        encoded = result.data[0].b64_json if result.data else None
        if not encoded:
            raise LLMError("upstream_error", "The image model returned no image")
        return base64.b64decode(encoded)

    async def close(self) -> None:
        await self._client.close()
