"""The model catalogue: built-in models, configured additions, providers and prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.settings import ConfigurationError, Settings
from llm.anthropic_provider import AnthropicProvider
from llm.base import LLMError
from llm.catalogue import DEFAULT_MODELS, Catalogue, ModelInfo, cost_micros, load_catalogue
from llm.openai_provider import OpenAIProvider
from tests.llm.support import collect, completion, split
from tests.support.fake_llm import FakeLLM, FakeReply

OLLAMA: dict[str, Any] = {
    "id": "ollama/llama3.1",
    "provider": "openai_compatible",
    "vendor_model": "llama3.1",
    "display_name": "Llama 3.1 (local)",
    "context_window": 131072,
    "max_output_tokens": 4096,
    "input_price": 0,
    "output_price": 0,
    "base_url": "http://127.0.0.1:11434/v1",
}


LOCAL_WHISPER: dict[str, Any] = {
    "id": "local/whisper",
    "provider": "openai_compatible",
    "vendor_model": "Systran/faster-whisper-small",
    "display_name": "Whisper (local)",
    "kind": "transcription",
    "audio_minute_price": 0,
    "base_url": "http://127.0.0.1:8000/v1",
}


def settings(**values: Any) -> Settings:
    return Settings.model_validate({"environment": "test", **values})


def model(**overrides: Any) -> ModelInfo:
    values: dict[str, Any] = {
        "id": "m",
        "provider": "openai",
        "vendor_model": "m",
        "display_name": "M",
        "context_window": 1000,
        "max_output_tokens": 100,
        "input_price": 150_000,
        "output_price": 600_000,
    }
    values.update(overrides)
    return ModelInfo(**values)


def test_without_keys_no_model_is_usable() -> None:
    catalogue = load_catalogue(settings())
    assert catalogue.usable() == []
    assert catalogue.default() is None
    with pytest.raises(LLMError) as caught:
        catalogue.get("gpt-4o-mini")
    assert caught.value.code == "not_configured"


def test_an_openai_key_alone_makes_the_builtin_openai_models_usable() -> None:
    catalogue = load_catalogue(settings(openai_api_key="sk-test"))
    usable = catalogue.usable()
    assert {m.provider for m in usable} == {"openai"}
    assert {"gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1"} <= {m.id for m in usable}
    assert catalogue.get("gpt-4o-mini").vendor_model == "gpt-4o-mini"
    with pytest.raises(LLMError):
        catalogue.get("claude-haiku-4-5")


def test_an_anthropic_key_alone_makes_the_builtin_claude_models_usable() -> None:
    catalogue = load_catalogue(settings(anthropic_api_key="sk-ant-test"))
    assert {m.provider for m in catalogue.usable()} == {"anthropic"}
    assert catalogue.get("claude-haiku-4-5").context_window == 200_000


def test_builtin_models_are_plausible() -> None:
    assert len({m.id for m in DEFAULT_MODELS}) == len(DEFAULT_MODELS)
    for builtin in DEFAULT_MODELS:
        assert builtin.provider in ("openai", "anthropic")
        if builtin.kind == "chat":
            assert 0 < builtin.max_output_tokens < builtin.context_window
            assert 0 < builtin.input_price < builtin.output_price
            assert builtin.vision
            assert builtin.tools
        elif builtin.kind == "embedding":
            assert builtin.provider == "openai"
            assert builtin.input_price > 0
            assert (builtin.context_window, builtin.output_price) == (0, 0)
        else:
            assert builtin.provider == "openai"
            prices = (builtin.audio_minute_price, builtin.speech_price, builtin.image_price)
            assert sum(price > 0 for price in prices) == 1
            assert (builtin.context_window, builtin.input_price, builtin.output_price) == (0, 0, 0)
    mini = next(m for m in DEFAULT_MODELS if m.id == "gpt-4o-mini")
    assert (mini.input_price, mini.output_price) == (150_000, 600_000)  # $0.15 / $0.60 per M
    small = next(m for m in DEFAULT_MODELS if m.id == "text-embedding-3-small")
    assert small.input_price == 20_000  # $0.02 per M


def test_llm_models_declares_an_embedding_model_by_its_input_price() -> None:
    local = {
        "id": "local-embed",
        "provider": "openai_compatible",
        "vendor_model": "nomic-embed-text",
        "display_name": "Nomic Embed",
        "kind": "embedding",
        "input_price": 0,
        "base_url": "http://127.0.0.1:11434/v1",
    }
    model = load_catalogue(settings(llm_models=json.dumps([local]))).lookup("local-embed")
    assert model is not None
    assert model.kind == "embedding"
    with pytest.raises(ConfigurationError, match="embedding model has no output_price"):
        load_catalogue(settings(llm_models=json.dumps([{**local, "output_price": 1}])))


def test_default_is_the_configured_model_or_the_first_usable() -> None:
    keys = {"openai_api_key": "sk-test", "anthropic_api_key": "sk-ant-test"}
    assert load_catalogue(settings(**keys)).default() == DEFAULT_MODELS[0]
    chosen = load_catalogue(settings(**keys, llm_default_model="claude-sonnet-4-5")).default()
    assert chosen is not None
    assert chosen.id == "claude-sonnet-4-5"
    # A default whose provider has no key falls back to the first usable model.
    fallback = load_catalogue(
        settings(openai_api_key="sk-test", llm_default_model="claude-sonnet-4-5")
    ).default()
    assert fallback is not None
    assert fallback.provider == "openai"


def test_an_unknown_default_model_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="LLM_DEFAULT_MODEL"):
        load_catalogue(settings(openai_api_key="sk-test", llm_default_model="gpt-4o-mimi"))


def test_llm_models_adds_a_compatible_server_usable_without_any_key() -> None:
    catalogue = load_catalogue(settings(llm_models=json.dumps([OLLAMA])))
    [ollama] = catalogue.usable()
    assert ollama == ModelInfo(**OLLAMA)
    assert catalogue.default() == ollama


def test_llm_models_replaces_a_builtin_model_with_the_same_id() -> None:
    cheaper = {**OLLAMA, "id": "gpt-4o-mini", "provider": "openai", "input_price": 1}
    del cheaper["base_url"]
    catalogue = load_catalogue(settings(openai_api_key="sk-test", llm_models=json.dumps([cheaper])))
    assert catalogue.get("gpt-4o-mini").input_price == 1
    assert [m.id for m in catalogue.usable()].count("gpt-4o-mini") == 1


def test_llm_models_file_adds_models_and_llm_models_wins_over_it(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps([OLLAMA, {**OLLAMA, "id": "vllm/qwen", "vendor_model": "qwen"}]))
    inline = [{**OLLAMA, "display_name": "Llama (inline)"}]
    catalogue = load_catalogue(settings(llm_models_file=path, llm_models=json.dumps(inline)))
    assert [m.id for m in catalogue.usable()] == ["ollama/llama3.1", "vllm/qwen"]
    assert catalogue.get("ollama/llama3.1").display_name == "Llama (inline)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[{", "not valid JSON"),
        ('{"id": "x"}', "not a valid list of models"),
        (json.dumps([{**OLLAMA, "context_window": -1}]), "context_window"),
        (json.dumps([{**OLLAMA, "provider": "mistral"}]), "provider"),
        (json.dumps([{**OLLAMA, "base_url": None}]), "needs base_url"),
        (json.dumps([{**OLLAMA, "provider": "openai"}]), "openai_compatible models only"),
        (json.dumps([{**OLLAMA, "input_price": 0.5}]), "input_price"),
        (json.dumps([{**OLLAMA, "colour": "red"}]), "colour"),
        (json.dumps([OLLAMA, OLLAMA]), "more than once"),
        (json.dumps([{**OLLAMA, "context_window": None}]), "needs context_window"),
        (json.dumps([{**OLLAMA, "image_price": 5}]), "a chat model has no image_price"),
        (json.dumps([{**LOCAL_WHISPER, "audio_minute_price": None}]), "needs audio_minute_price"),
        (json.dumps([{**LOCAL_WHISPER, "context_window": 1}]), "has no context_window"),
        (json.dumps([{**LOCAL_WHISPER, "speech_price": 1}]), "has no speech_price"),
        (json.dumps([{**LOCAL_WHISPER, "vision": True}]), "chat models only"),
        (json.dumps([{**LOCAL_WHISPER, "audio_minute_price": -1}]), "audio_minute_price"),
        (json.dumps([{**LOCAL_WHISPER, "kind": "video"}]), "kind"),
        (
            json.dumps([{**LOCAL_WHISPER, "provider": "anthropic", "base_url": None}]),
            "Anthropic has no transcription models",
        ),
    ],
)
def test_bad_llm_models_fail_naming_the_variable(value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match="LLM_MODELS") as caught:
        load_catalogue(settings(llm_models=value))
    assert problem in str(caught.value)


def test_bad_llm_models_file_fails_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LLM_MODELS_FILE"):
        load_catalogue(settings(llm_models_file=tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(ConfigurationError, match="LLM_MODELS_FILE"):
        load_catalogue(settings(llm_models_file=tmp_path / "bad.json"))


def test_errors_and_reprs_never_show_an_api_key() -> None:
    entry = {**OLLAMA, "api_key": "sk-very-secret", "context_window": "lots"}
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue(settings(llm_models=json.dumps([entry])))
    assert "sk-very-secret" not in str(caught.value)
    assert "sk-very-secret" not in repr(model(api_key="sk-very-secret"))
    configured = settings(openai_api_key="sk-very-secret", anthropic_api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(configured)


def test_settings_read_the_llm_variables_from_the_environment(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    monkeypatch.setenv("LLM_MODELS", json.dumps([OLLAMA]))
    monkeypatch.setenv("LLM_MODELS_FILE", "")
    monkeypatch.setenv("LLM_DEFAULT_MODEL", "ollama/llama3.1")
    monkeypatch.setenv("LLM_REQUEST_TIMEOUT", "12.5")
    loaded = Settings()
    assert loaded.openai_api_key is not None
    assert loaded.openai_api_key.get_secret_value() == "sk-env"
    assert loaded.anthropic_api_key is None
    assert loaded.openai_base_url is None
    assert loaded.llm_models_file is None
    assert loaded.llm_request_timeout == 12.5
    catalogue = load_catalogue(loaded)
    default = catalogue.default()
    assert default is not None
    assert default.id == "ollama/llama3.1"


def test_llm_settings_default_to_unset(no_env_file: Path) -> None:
    loaded = Settings()
    assert loaded.openai_api_key is None
    assert loaded.anthropic_api_key is None
    assert loaded.llm_models is None
    assert loaded.llm_default_model is None
    assert loaded.llm_request_timeout == 60


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "expected"),
    [
        (0, 0, 0),
        (1, 0, 1),  # 0.15 micro-credits round up
        (0, 1, 1),  # 0.6 round up
        (1_000_000, 0, 150_000),
        (0, 1_000_000, 600_000),
        (333, 777, 517),  # 49.95 + 466.2 = 516.15
        (6_666_667, 0, 1_000_001),  # 1_000_000.05
        (10**15, 10**15, 750_000 * 10**9),
        (10**15 + 1, 0, 150_000 * 10**9 + 1),
    ],
)
def test_cost_is_exact_and_rounds_up(input_tokens: int, output_tokens: int, expected: int) -> None:
    assert cost_micros(model(), input_tokens, output_tokens) == expected


def test_cost_is_free_for_a_free_model() -> None:
    assert cost_micros(model(input_price=0, output_price=0), 10**9, 10**9) == 0


async def test_providers_are_shared_per_endpoint_and_key() -> None:
    catalogue = Catalogue(
        [
            *DEFAULT_MODELS,
            ModelInfo(**OLLAMA),
            ModelInfo(**{**OLLAMA, "id": "ollama/qwen", "vendor_model": "qwen"}),
            ModelInfo(**{**OLLAMA, "id": "vllm/x", "base_url": "http://127.0.0.1:8001/v1"}),
        ],
        openai_api_key="sk-test",
        openai_base_url=None,
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=None,
        default_model=None,
        request_timeout=5,
        media={},
    )
    try:
        mini = catalogue.provider_for(catalogue.get("gpt-4o-mini"))
        assert isinstance(mini, OpenAIProvider)
        assert mini.name == "openai"
        assert catalogue.provider_for(catalogue.get("gpt-4.1")) is mini
        haiku = catalogue.provider_for(catalogue.get("claude-haiku-4-5"))
        assert isinstance(haiku, AnthropicProvider)
        assert catalogue.provider_for(catalogue.get("claude-sonnet-4-5")) is haiku
        ollama = catalogue.provider_for(catalogue.get("ollama/llama3.1"))
        assert ollama.name == "openai_compatible"
        assert catalogue.provider_for(catalogue.get("ollama/qwen")) is ollama
        assert catalogue.provider_for(catalogue.get("vllm/x")) is not ollama
    finally:
        await catalogue.close()


async def test_catalogue_providers_reach_the_configured_endpoints(fake_llm: FakeLLM) -> None:
    local = {**OLLAMA, "base_url": f"{fake_llm.base_url}/v1"}
    catalogue = load_catalogue(
        settings(
            openai_api_key="sk-test",
            openai_base_url=f"{fake_llm.base_url}/v1",
            anthropic_api_key="sk-ant-test",
            anthropic_base_url=fake_llm.base_url,
            llm_models=json.dumps([local]),
            llm_request_timeout=5,
        )
    )
    fake_llm.script(FakeReply(text="one"), FakeReply(text="two"), FakeReply(text="three"))
    try:
        replies = []
        for model_id in ("gpt-4o-mini", "claude-haiku-4-5", "ollama/llama3.1"):
            chosen = catalogue.get(model_id)
            request = completion(model=chosen.vendor_model)
            deltas, _ = split(await collect(catalogue.provider_for(chosen), request))
            replies.append("".join(deltas))
    finally:
        await catalogue.close()
    assert replies == ["one", "two", "three"]
    paths = [(r.path, r.json["model"]) for r in fake_llm.requests]
    assert paths == [
        ("/v1/chat/completions", "gpt-4o-mini"),
        ("/v1/messages", "claude-haiku-4-5"),
        ("/v1/chat/completions", "llama3.1"),
    ]
    assert "max_completion_tokens" in fake_llm.requests[0].json
    assert "max_tokens" in fake_llm.requests[2].json


def test_media_models_are_no_chat_models() -> None:
    catalogue = load_catalogue(settings(openai_api_key="sk-test"))
    assert {m.kind for m in catalogue.usable()} == {"chat"}
    with pytest.raises(LLMError) as caught:
        catalogue.get("whisper-1")
    assert caught.value.code == "not_configured"
    with pytest.raises(ConfigurationError, match="LLM_DEFAULT_MODEL names no known chat model"):
        load_catalogue(settings(openai_api_key="sk-test", llm_default_model="tts-1"))


def test_without_an_openai_endpoint_the_ai_has_no_senses() -> None:
    catalogue = load_catalogue(settings(anthropic_api_key="sk-ant-test"))
    assert catalogue.media_model("transcription") is None
    assert catalogue.media_model("speech") is None
    assert catalogue.media_model("image") is None
    with pytest.raises(LLMError) as caught:
        catalogue.media_client(next(m for m in DEFAULT_MODELS if m.id == "whisper-1"))
    assert caught.value.code == "not_configured"


def test_an_openai_key_gives_the_default_senses() -> None:
    catalogue = load_catalogue(settings(openai_api_key="sk-test"))
    found = [catalogue.media_model(kind) for kind in ("transcription", "speech", "image")]
    assert [m.id if m else None for m in found] == ["whisper-1", "tts-1", "gpt-image-1"]


def test_settings_choose_the_senses_models() -> None:
    catalogue = load_catalogue(
        settings(
            openai_api_key="sk-test",
            transcription_model="gpt-4o-mini-transcribe",
            speech_model="tts-1-hd",
            image_model="dall-e-3",
        )
    )
    found = [catalogue.media_model(kind) for kind in ("transcription", "speech", "image")]
    assert [m.id if m else None for m in found] == [
        "gpt-4o-mini-transcribe",
        "tts-1-hd",
        "dall-e-3",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("transcription_model", "whisper-2", "TRANSCRIPTION_MODEL names no transcription model"),
        ("speech_model", "gpt-4o-mini", "SPEECH_MODEL names no speech model"),
        ("image_model", "tts-1", "IMAGE_MODEL names no image model"),
    ],
)
def test_a_sense_setting_naming_no_model_of_its_kind_fails(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        load_catalogue(settings(openai_api_key="sk-test", **{variable: value}))


def test_a_local_server_without_a_key_is_a_usable_endpoint() -> None:
    by_base_url = load_catalogue(settings(speech_base_url="http://127.0.0.1:8880/v1"))
    assert by_base_url.media_model("speech") is not None
    assert by_base_url.media_model("transcription") is None
    everything_local = load_catalogue(settings(openai_base_url="http://127.0.0.1:8880/v1"))
    assert everything_local.media_model("image") is not None


async def test_media_clients_are_shared_per_endpoint_and_key() -> None:
    catalogue = load_catalogue(
        settings(
            openai_api_key="sk-test",
            image_base_url="http://127.0.0.1:9000/v1",
            llm_models=json.dumps([LOCAL_WHISPER]),
            transcription_model="local/whisper",
        )
    )
    try:
        speech = catalogue.media_model("speech")
        image = catalogue.media_model("image")
        transcription = catalogue.media_model("transcription")
        assert speech is not None
        assert image is not None
        assert transcription is not None
        client = catalogue.media_client(speech)
        assert catalogue.media_client(speech) is client
        assert catalogue.media_client(image) is not client
        assert catalogue.media_client(transcription) is not client
        with pytest.raises(LLMError):
            catalogue.media_client(catalogue.get("gpt-4o-mini"))
    finally:
        await catalogue.close()


@pytest.mark.ffmpeg
async def test_catalogue_media_clients_reach_the_configured_endpoints(fake_llm: FakeLLM) -> None:
    """A local Whisper added to LLM_MODELS, needing no key; speech and images at OpenAI's."""
    whisper = {**LOCAL_WHISPER, "base_url": f"{fake_llm.base_url}/v1"}
    catalogue = load_catalogue(
        settings(
            openai_api_key="sk-test",
            speech_base_url=f"{fake_llm.base_url}/v1",
            image_base_url=f"{fake_llm.base_url}/v1",
            llm_models=json.dumps([whisper]),
            transcription_model="local/whisper",
        )
    )
    fake_llm.script(FakeReply(text="heard"))
    try:
        transcription = catalogue.media_model("transcription")
        speech = catalogue.media_model("speech")
        image = catalogue.media_model("image")
        assert transcription is not None
        assert speech is not None
        assert image is not None
        heard = await catalogue.media_client(transcription).transcribe(
            transcription, b"OggS", filename="v.ogg", mime_type="audio/ogg"
        )
        await catalogue.media_client(speech).speak(speech, "Hi", voice="echo")
        await catalogue.media_client(image).generate_image(image, "a cat")
    finally:
        await catalogue.close()
    assert heard == "heard"
    recorded = [(r.path, r.json["model"], r.headers["authorization"]) for r in fake_llm.requests]
    assert recorded == [
        ("/v1/audio/transcriptions", "Systran/faster-whisper-small", "Bearer no-key"),
        ("/v1/audio/speech", "tts-1", "Bearer sk-test"),
        ("/v1/images/generations", "gpt-image-1", "Bearer sk-test"),
    ]
