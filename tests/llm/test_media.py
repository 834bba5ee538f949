"""MediaClient through the real `openai` SDK against the fake vendor: transcription (multipart),
speech (Ogg/Opus) and image generation (base64 PNG), and their errors."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import openai
import pytest
from PIL import Image

from llm.base import LLMError, LLMErrorCode
from llm.catalogue import DEFAULT_MODELS
from llm.media import MediaClient
from llm.model_info import ModelInfo
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import bind_free_port

MODELS = {model.id: model for model in DEFAULT_MODELS}
WHISPER = MODELS["whisper-1"]
TTS = MODELS["tts-1"]
GPT_IMAGE = MODELS["gpt-image-1"]
DALL_E = MODELS["dall-e-3"]
# Bytes as a voice note begins (Ogg): the fake vendor records the upload, it does not listen.
VOICE_NOTE = b"OggS\x00\x02" + bytes(range(256)) * 8


@pytest.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[MediaClient]:
    client = MediaClient(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1", timeout=5)
    yield client
    await client.close()


async def test_transcription_uploads_the_audio_and_returns_the_text(
    fake_llm: FakeLLM, client: MediaClient
) -> None:
    fake_llm.script(FakeReply(text="Привет! Meet me at 5 pm."))
    text = await client.transcribe(WHISPER, VOICE_NOTE, filename="voice.ogg", mime_type="audio/ogg")
    assert text == "Привет! Meet me at 5 pm."
    [recorded] = fake_llm.requests
    assert recorded.path == "/v1/audio/transcriptions"
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert recorded.json == {"model": "whisper-1", "response_format": "json"}
    assert recorded.file is not None
    assert recorded.file.data == VOICE_NOTE
    assert (recorded.file.filename, recorded.file.content_type) == ("voice.ogg", "audio/ogg")


@pytest.mark.ffmpeg
async def test_speech_is_ogg_opus(fake_llm: FakeLLM, client: MediaClient) -> None:
    audio = await client.speak(TTS, "Good morning, everyone!", voice="nova")
    assert isinstance(audio, bytes)
    assert audio.startswith(b"OggS")
    assert b"OpusHead" in audio[:64]
    [recorded] = fake_llm.requests
    assert recorded.path == "/v1/audio/speech"
    assert recorded.json == {
        "model": "tts-1",
        "input": "Good morning, everyone!",
        "voice": "nova",
        "response_format": "opus",
    }


@pytest.mark.parametrize("model", [GPT_IMAGE, DALL_E], ids=["gpt-image-1", "dall-e-3"])
async def test_image_generation_returns_a_png(
    fake_llm: FakeLLM, client: MediaClient, model: ModelInfo
) -> None:
    data = await client.generate_image(model, "A lighthouse at dusk, oil painting")
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    [recorded] = fake_llm.requests
    assert recorded.path == "/v1/images/generations"
    expected = {
        "model": model.vendor_model,
        "prompt": "A lighthouse at dusk, oil painting",
        "n": 1,
        "size": "1024x1024",
    }
    if model is DALL_E:
        expected["response_format"] = "b64_json"
    assert recorded.json == expected


async def test_the_fake_answers_dall_e_a_url_and_refuses_response_format_to_gpt_image(
    fake_llm: FakeLLM,
) -> None:
    """As OpenAI does: which is why the client asks DALL·E, and only DALL·E, for base64."""
    sdk = openai.AsyncOpenAI(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1")
    try:
        result = await sdk.images.generate(model="dall-e-3", prompt="a cat")
        assert result.data is not None
        assert result.data[0].url
        assert result.data[0].b64_json is None
        with pytest.raises(openai.BadRequestError, match="response_format"):
            await sdk.images.generate(model="gpt-image-1", prompt="a cat", response_format="url")
    finally:
        await sdk.close()


Call = Callable[[MediaClient], Awaitable[object]]
CALLS: dict[str, Call] = {
    "transcribe": lambda c: c.transcribe(
        WHISPER, VOICE_NOTE, filename="v.ogg", mime_type="audio/ogg"
    ),
    "speak": lambda c: c.speak(TTS, "Hi", voice="alloy"),
    "generate_image": lambda c: c.generate_image(GPT_IMAGE, "a cat"),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (FakeReply(status=429, retry_after=3), "rate_limited", True),
        (FakeReply(status=429, error_type="insufficient_quota"), "rate_limited", False),
        (FakeReply(status=401), "auth_failed", False),
        (FakeReply(status=400, error_message="Your request was rejected."), "bad_request", False),
        (FakeReply(status=500), "upstream_error", True),
        (FakeReply(status=503), "overloaded", True),
    ],
)
async def test_errors_map_as_the_chat_provider_maps_them(
    fake_llm: FakeLLM,
    client: MediaClient,
    call: Call,
    reply: FakeReply,
    code: LLMErrorCode,
    retryable: bool,
) -> None:
    fake_llm.script(reply)
    with pytest.raises(LLMError) as caught:
        await call(client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.retry_after == reply.retry_after
    assert len(fake_llm.requests) == 1, "the SDK must not retry on its own"


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_an_unreachable_server(call: Call) -> None:
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    client = MediaClient(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1", timeout=5)
    try:
        with pytest.raises(LLMError) as caught:
            await call(client)
    finally:
        await client.close()
    assert (caught.value.code, caught.value.retryable) == ("upstream_error", True)


async def test_a_server_that_never_answers_is_a_timeout() -> None:
    with bind_free_port() as sock:
        sock.listen()
        client = MediaClient(
            api_key="sk-test", base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1", timeout=0.2
        )
        try:
            with pytest.raises(LLMError) as caught:
                await CALLS["speak"](client)
        finally:
            await client.close()
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_a_local_server_without_a_key(fake_llm: FakeLLM) -> None:
    client = MediaClient(api_key="", base_url=f"{fake_llm.base_url}/v1", timeout=5)
    fake_llm.script(FakeReply(text="local words"))
    try:
        assert await CALLS["transcribe"](client) == "local words"
    finally:
        await client.close()


async def test_the_fake_refuses_what_it_cannot_answer(fake_llm: FakeLLM) -> None:
    """A transcription without its file, speech in another format than Ogg/Opus."""
    async with httpx.AsyncClient(base_url=f"{fake_llm.base_url}/v1") as http:
        response = await http.post("/audio/transcriptions", data={"model": "whisper-1"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "'file' is required."
    sdk = openai.AsyncOpenAI(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1")
    try:
        with pytest.raises(openai.BadRequestError, match="Ogg/Opus only"):
            await sdk.audio.speech.create(model="tts-1", input="Hi", voice="alloy")
    finally:
        await sdk.close()
