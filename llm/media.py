"""The AI's ears, voice and brush: OpenAI's audio and image endpoints, and any server that speaks
them (a local Whisper server, LocalAI), through the official `openai` SDK.

One `MediaClient` per endpoint and key (see `Catalogue.media_client`). Failures are `LLMError`s,
mapped as the chat provider maps them; the SDK does not retry on its own.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai

from llm.base import LLMError
from llm.model_info import ModelInfo
from llm.openai_provider import NO_API_KEY, api_error, connection_error

# Drawing takes far longer than answering: gpt-image-1 needs up to a minute or two.
IMAGE_READ_TIMEOUT = 180.0
IMAGE_SIZE = "1024x1024"


@contextmanager
def _vendor_errors() -> Iterator[None]:
    try:
        yield
    except openai.APIConnectionError as exc:
        raise connection_error(exc, started=False) from exc
    except openai.APIError as exc:
        raise api_error(exc) from exc


class MediaClient:
    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0) -> None:
        """`timeout` bounds connecting, sending and the wait for the answer (image generation
        waits at least IMAGE_READ_TIMEOUT)."""
        self._timeout = timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_API_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(timeout),
        )

    async def transcribe(
        self, model: ModelInfo, audio: bytes, *, filename: str, mime_type: str
    ) -> str:
        """The words spoken in the audio (`POST /audio/transcriptions`, multipart)."""
        with _vendor_errors():
            result = await self._client.audio.transcriptions.create(
                model=model.vendor_model,
                file=(filename, audio, mime_type),
                response_format="json",
            )
        return result.text

    async def speak(self, model: ModelInfo, text: str, *, voice: str) -> bytes:
        """The text spoken, as Ogg/Opus (what a Telegram voice note is)."""
        with _vendor_errors():
            response = await self._client.audio.speech.create(
                model=model.vendor_model, input=text, voice=voice, response_format="opus"
            )
        return response.content

    async def generate_image(self, model: ModelInfo, prompt: str) -> bytes:
        """One 1024x1024 PNG drawn from the prompt."""
        params: dict[str, Any] = {}
        # gpt-image-* always answer base64 and refuse the parameter; DALL·E and other servers
        # answer a URL unless asked.
        if not model.vendor_model.startswith("gpt-image"):
            params["response_format"] = "b64_json"
        with _vendor_errors():
            result = await self._client.images.generate(
                model=model.vendor_model,
                prompt=prompt,
                n=1,
                size=IMAGE_SIZE,
                timeout=openai.Timeout(self._timeout, read=max(self._timeout, IMAGE_READ_TIMEOUT)),
                **params,
            )
        encoded = result.data[0].b64_json if result.data else None
        if not encoded:
            raise LLMError("upstream_error", "The provider sent no image", retryable=True)
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise LLMError(
                "upstream_error", "The provider sent a broken image", retryable=True
            ) from exc

    async def close(self) -> None:
        await self._client.close()
