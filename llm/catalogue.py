"""The models the AI participant can use, their limits and prices, and a provider for each.

Chat models answer (some see images, some call tools); transcription, speech and image models
are the AI's ears, voice and brush, priced per audio minute, per 1M characters and per image;
embedding models turn assistants' knowledge into vectors, priced per 1M input tokens.
A built-in list covers current OpenAI and Anthropic models, so an API key alone is enough.
`LLM_MODELS` (inline JSON) and `LLM_MODELS_FILE` (a JSON file) add models, for example an
OpenAI-compatible server by base URL, or replace built-in ones with the same id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from core.settings import ConfigurationError, Settings
from llm.base import LLMError, Provider
from llm.model_info import MediaKind, ModelKind, ProviderKind
from llm.model_info import ModelInfo as ModelInfo  # where callers have always found it

if TYPE_CHECKING:
    from llm.media import MediaClient

PRICE_UNIT_TOKENS = 1_000_000
PRICE_UNIT_CHARACTERS = 1_000_000


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def cost_micros(model: ModelInfo, input_tokens: int, output_tokens: int) -> int:
    """What the tokens cost in micro-credits, rounded up to a whole micro-credit."""
    numerator = input_tokens * model.input_price + output_tokens * model.output_price
    return _ceil_div(numerator, PRICE_UNIT_TOKENS)


def transcription_cost(model: ModelInfo, seconds: float) -> int:
    """Audio is priced per minute and counted by the started second."""
    return _ceil_div(math.ceil(seconds) * model.audio_minute_price, 60)


def speech_cost(model: ModelInfo, characters: int) -> int:
    return _ceil_div(characters * model.speech_price, PRICE_UNIT_CHARACTERS)


def image_cost(model: ModelInfo, images: int) -> int:
    return images * model.image_price


DEFAULT_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="gpt-4o-mini",
        provider="openai",
        vendor_model="gpt-4o-mini",
        display_name="GPT-4o mini",
        context_window=128_000,
        max_output_tokens=16_384,
        input_price=150_000,
        output_price=600_000,
        vision=True,
        tools=True,
    ),
    ModelInfo(
        id="gpt-4.1-mini",
        provider="openai",
        vendor_model="gpt-4.1-mini",
        display_name="GPT-4.1 mini",
        context_window=1_047_576,
        max_output_tokens=32_768,
        input_price=400_000,
        output_price=1_600_000,
        vision=True,
        tools=True,
    ),
    ModelInfo(
        id="gpt-4.1",
        provider="openai",
        vendor_model="gpt-4.1",
        display_name="GPT-4.1",
        context_window=1_047_576,
        max_output_tokens=32_768,
        input_price=2_000_000,
        output_price=8_000_000,
        vision=True,
        tools=True,
    ),
    ModelInfo(
        id="claude-haiku-4-5",
        provider="anthropic",
        vendor_model="claude-haiku-4-5",
        display_name="Claude Haiku 4.5",
        context_window=200_000,
        max_output_tokens=64_000,
        input_price=1_000_000,
        output_price=5_000_000,
        vision=True,
        tools=True,
    ),
    ModelInfo(
        id="claude-sonnet-4-5",
        provider="anthropic",
        vendor_model="claude-sonnet-4-5",
        display_name="Claude Sonnet 4.5",
        context_window=200_000,
        max_output_tokens=64_000,
        input_price=3_000_000,
        output_price=15_000_000,
        vision=True,
        tools=True,
    ),
    ModelInfo(
        id="whisper-1",
        provider="openai",
        vendor_model="whisper-1",
        display_name="Whisper",
        kind="transcription",
        audio_minute_price=6_000,
    ),
    ModelInfo(
        id="gpt-4o-mini-transcribe",
        provider="openai",
        vendor_model="gpt-4o-mini-transcribe",
        display_name="GPT-4o mini Transcribe",
        kind="transcription",
        audio_minute_price=3_000,
    ),
    ModelInfo(
        id="tts-1",
        provider="openai",
        vendor_model="tts-1",
        display_name="TTS",
        kind="speech",
        speech_price=15_000_000,
    ),
    ModelInfo(
        id="tts-1-hd",
        provider="openai",
        vendor_model="tts-1-hd",
        display_name="TTS HD",
        kind="speech",
        speech_price=30_000_000,
    ),
    ModelInfo(
        id="gpt-image-1",
        provider="openai",
        vendor_model="gpt-image-1",
        display_name="GPT Image 1",
        kind="image",
        image_price=42_000,  # medium quality, 1024x1024
    ),
    ModelInfo(
        id="dall-e-3",
        provider="openai",
        vendor_model="dall-e-3",
        display_name="DALL·E 3",
        kind="image",
        image_price=40_000,  # standard quality, 1024x1024
    ),
    ModelInfo(
        id="text-embedding-3-small",
        provider="openai",
        vendor_model="text-embedding-3-small",
        display_name="Text Embedding 3 Small",
        kind="embedding",
        input_price=20_000,
    ),
    ModelInfo(
        id="text-embedding-3-large",
        provider="openai",
        vendor_model="text-embedding-3-large",
        display_name="Text Embedding 3 Large",
        kind="embedding",
        input_price=130_000,
    ),
)


_CHAT_FIELDS = ("context_window", "max_output_tokens", "input_price", "output_price")
_MEDIA_PRICES: dict[MediaKind, str] = {
    "transcription": "audio_minute_price",
    "speech": "speech_price",
    "image": "image_price",
}


class _ModelEntry(BaseModel):
    """One model of LLM_MODELS / LLM_MODELS_FILE, checked before it is used: a chat model with
    its limits and token prices, a transcription, speech or image model with its price, or an
    embedding model with its `input_price`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    provider: ProviderKind
    vendor_model: str = Field(min_length=1)
    display_name: str = Field(min_length=1)
    kind: ModelKind = "chat"
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    input_price: int | None = Field(default=None, ge=0)
    output_price: int | None = Field(default=None, ge=0)
    vision: bool = False
    tools: bool = False
    audio_minute_price: int | None = Field(default=None, ge=0)
    speech_price: int | None = Field(default=None, ge=0)
    image_price: int | None = Field(default=None, ge=0)
    base_url: str | None = None
    api_key: str | None = None

    @model_validator(mode="after")
    def _endpoint_only_for_compatible_servers(self) -> _ModelEntry:
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError(f"model {self.id!r}: an openai_compatible model needs base_url")
        if self.provider != "openai_compatible" and (self.base_url or self.api_key):
            raise ValueError(
                f"model {self.id!r}: base_url and api_key apply to openai_compatible models only"
                " (OpenAI and Anthropic use their own settings)"
            )
        return self

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> _ModelEntry:
        set_fields = {
            name
            for name in (*_CHAT_FIELDS, *_MEDIA_PRICES.values())
            if getattr(self, name) is not None
        }
        if self.kind == "chat":
            needed = set(_CHAT_FIELDS)
        else:
            needed = {"input_price" if self.kind == "embedding" else _MEDIA_PRICES[self.kind]}
            if self.provider == "anthropic":
                raise ValueError(f"model {self.id!r}: Anthropic has no {self.kind} models")
            if self.vision or self.tools:
                raise ValueError(f"model {self.id!r}: vision and tools apply to chat models only")
        if missing := sorted(needed - set_fields):
            raise ValueError(f"model {self.id!r}: a {self.kind} model needs {', '.join(missing)}")
        if extra := sorted(set_fields - needed):
            raise ValueError(f"model {self.id!r}: a {self.kind} model has no {', '.join(extra)}")
        return self

    def model_info(self) -> ModelInfo:
        return ModelInfo(**self.model_dump(exclude_none=True))


_ENTRIES = TypeAdapter(list[_ModelEntry])


@dataclass(frozen=True, slots=True)
class MediaSetting:
    """The model a sense uses (TRANSCRIPTION_MODEL, ...) and its endpoint (TRANSCRIPTION_BASE_URL,
    ...; OPENAI_BASE_URL when unset)."""

    model_id: str
    base_url: str | None = None


class Catalogue:
    def __init__(
        self,
        models: list[ModelInfo],
        *,
        openai_api_key: str | None,
        openai_base_url: str | None,
        anthropic_api_key: str | None,
        anthropic_base_url: str | None,
        default_model: str | None,
        request_timeout: float,
        media: Mapping[MediaKind, MediaSetting],
    ) -> None:
        self._models = {model.id: model for model in models}
        self._openai_api_key = openai_api_key
        self._openai_base_url = openai_base_url
        self._anthropic_api_key = anthropic_api_key
        self._anthropic_base_url = anthropic_base_url
        self._default_model = default_model
        self._request_timeout = request_timeout
        self._media = dict(media)
        self._providers: dict[tuple[str, str | None, str | None], Provider] = {}
        self._media_clients: dict[tuple[str | None, str], MediaClient] = {}

    def _is_usable(self, model: ModelInfo) -> bool:
        """A chat model whose provider is configured (usable, get and default concern chat
        models only: a media model is reached through media_model)."""
        if model.kind != "chat":
            return False
        if model.provider == "openai":
            return bool(self._openai_api_key)
        if model.provider == "anthropic":
            return bool(self._anthropic_api_key)
        return bool(model.base_url)

    def usable(self) -> list[ModelInfo]:
        """The chat models whose provider is configured, in catalogue order."""
        return [model for model in self._models.values() if self._is_usable(model)]

    def get(self, model_id: str) -> ModelInfo:
        model = self._models.get(model_id)
        if model is None or not self._is_usable(model):
            raise LLMError("not_configured", f"Model {model_id!r} is not available")
        return model

    def lookup(self, model_id: str) -> ModelInfo | None:
        """The model by id, whether or not its provider is configured."""
        return self._models.get(model_id)

    def default(self) -> ModelInfo | None:
        """LLM_DEFAULT_MODEL if it is usable, else the first usable model."""
        usable = self.usable()
        for model in usable:
            if model.id == self._default_model:
                return model
        return usable[0] if usable else None

    def provider_for(self, model: ModelInfo) -> Provider:
        """One provider (and HTTP connection pool) per vendor endpoint and key."""
        if not self._is_usable(model):
            raise LLMError("not_configured", f"Model {model.id!r} is not available")
        key: tuple[ProviderKind, str | None, str | None]
        if model.provider == "openai":
            key = (model.provider, self._openai_base_url, self._openai_api_key)
        elif model.provider == "anthropic":
            key = (model.provider, self._anthropic_base_url, self._anthropic_api_key)
        else:
            key = (model.provider, model.base_url, model.api_key or "")
        provider = self._providers.get(key)
        if provider is None:
            provider = self._providers[key] = self._make_provider(*key)
        return provider

    def _make_provider(
        self, kind: ProviderKind, base_url: str | None, api_key: str | None
    ) -> Provider:
        # A vendor's SDK takes up to seconds to import: only when its first request is made.
        if kind == "anthropic":
            from llm.anthropic_provider import AnthropicProvider

            return AnthropicProvider(
                api_key=api_key or "", base_url=base_url, timeout=self._request_timeout
            )
        from llm.openai_provider import OpenAIProvider

        return OpenAIProvider(
            api_key=api_key or "",
            base_url=base_url,
            kind=kind,
            timeout=self._request_timeout,
        )

    def _media_endpoint(self, model: ModelInfo) -> tuple[str | None, str]:
        """The base URL and key of a media model's server: its own for an openai_compatible
        entry, else its sense's *_BASE_URL (OPENAI_BASE_URL when unset) and OPENAI_API_KEY."""
        if model.provider == "openai_compatible":
            return model.base_url, model.api_key or ""
        setting = self._media.get(model.kind) if model.kind in _MEDIA_PRICES else None
        base_url = setting.base_url if setting is not None else None
        return base_url or self._openai_base_url, self._openai_api_key or ""

    def media_model(self, kind: MediaKind) -> ModelInfo | None:
        """The model the setting names for this sense, when its endpoint is usable: a key, or
        a base URL of a local server that needs none. None: the AI lacks this sense."""
        setting = self._media.get(kind)
        model = self._models.get(setting.model_id) if setting is not None else None
        if model is None or model.kind != kind:
            return None
        base_url, api_key = self._media_endpoint(model)
        return model if (api_key or base_url) else None

    def media_client(self, model: ModelInfo) -> MediaClient:
        """One client (and HTTP connection pool) per media endpoint and key."""
        if model.kind not in _MEDIA_PRICES or self.media_model(model.kind) != model:
            raise LLMError("not_configured", f"Model {model.id!r} is not available")
        key = self._media_endpoint(model)
        client = self._media_clients.get(key)
        if client is None:
            # The SDK takes up to seconds to import: only when the first request is made.
            from llm.media import MediaClient

            base_url, api_key = key
            client = MediaClient(api_key=api_key, base_url=base_url, timeout=self._request_timeout)
            self._media_clients[key] = client
        return client

    async def close(self) -> None:
        clients: list[Provider | MediaClient] = [
            *self._providers.values(),
            *self._media_clients.values(),
        ]
        self._providers.clear()
        self._media_clients.clear()
        for client in clients:
            await client.close()


def _parse_models(text: str, variable: str) -> list[ModelInfo]:
    try:
        entries = _ENTRIES.validate_python(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{variable} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        # Without the input values: an entry may hold a server's API key.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigurationError(f"{variable} is not a valid list of models: {problems}") from None
    ids = [entry.id for entry in entries]
    duplicates = sorted({model_id for model_id in ids if ids.count(model_id) > 1})
    if duplicates:
        raise ConfigurationError(f"{variable} lists a model id more than once: {duplicates}")
    return [entry.model_info() for entry in entries]


def _read_models_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"LLM_MODELS_FILE cannot be read: {exc}") from exc


def load_catalogue(settings: Settings) -> Catalogue:
    """The built-in models, then LLM_MODELS_FILE's, then LLM_MODELS' (a later one with the same
    id replaces an earlier one). Raises ConfigurationError naming the variable on bad input,
    including an LLM_DEFAULT_MODEL that names no chat model and a TRANSCRIPTION_MODEL,
    SPEECH_MODEL or IMAGE_MODEL that names no model of its kind."""
    models = {model.id: model for model in DEFAULT_MODELS}
    if settings.llm_models_file is not None:
        text = _read_models_file(settings.llm_models_file)
        models.update((m.id, m) for m in _parse_models(text, "LLM_MODELS_FILE"))
    if settings.llm_models is not None:
        models.update((m.id, m) for m in _parse_models(settings.llm_models, "LLM_MODELS"))
    default = models.get(settings.llm_default_model or "")
    if settings.llm_default_model is not None and (default is None or default.kind != "chat"):
        raise ConfigurationError(
            f"LLM_DEFAULT_MODEL names no known chat model: {settings.llm_default_model!r}"
        )
    media: dict[MediaKind, MediaSetting] = {
        "transcription": MediaSetting(
            settings.transcription_model, settings.transcription_base_url
        ),
        "speech": MediaSetting(settings.speech_model, settings.speech_base_url),
        "image": MediaSetting(settings.image_model, settings.image_base_url),
    }
    for kind, setting in media.items():
        model = models.get(setting.model_id)
        if model is None or model.kind != kind:
            raise ConfigurationError(
                f"{kind.upper()}_MODEL names no {kind} model of the catalogue: {setting.model_id!r}"
                " (add it to LLM_MODELS with its kind)"
            )
    return Catalogue(
        list(models.values()),
        openai_api_key=_secret(settings.openai_api_key),
        openai_base_url=settings.openai_base_url,
        anthropic_api_key=_secret(settings.anthropic_api_key),
        anthropic_base_url=settings.anthropic_base_url,
        default_model=settings.llm_default_model,
        request_timeout=settings.llm_request_timeout,
        media=media,
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
