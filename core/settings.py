"""Application settings: one object, read from the environment and `.env`."""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.redis_client import RedisTarget
from core.token_cipher import TokenCipher

logger = logging.getLogger(__name__)

DATA_DIR = Path("data")

# Values that appear in docs and examples; a production server must never run with them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "dev", "development", "please-change-me"}
)


class ConfigurationError(RuntimeError):
    """The settings cannot run in this environment; the message names the variable."""


def normalize_database_url(url: str) -> str:
    """Accept the URL forms hosting platforms hand out and pick the async driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def _split_csv(value: object) -> object:
    """A comma-separated list; a JSON list too (Aeon's `.env` writes `CORS_ORIGINS=["..."]`)."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return TypeAdapter(list[str]).validate_json(value)
        except ValidationError:
            raise ValueError("not a JSON list of strings") from None
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _cluster_urls(urls: list[str]) -> tuple[str, ...]:
    """REDIS_CLUSTER_URLS: redis:// or rediss:// URLs of nodes of one cluster (any of them leads
    the client to the others), with the same credentials and TLS, and no database other than 0
    (a cluster has only that one)."""
    for url in urls:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise ValueError(f"REDIS_CLUSTER_URLS: {url!r} has an invalid port") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(
                f"REDIS_CLUSTER_URLS: {url!r} is not a redis:// or rediss:// URL with a host"
            )
        if parts.path not in ("", "/", "/0"):
            raise ValueError(f"REDIS_CLUSTER_URLS: {url!r} names a database; a cluster has only 0")
    if len({(p.scheme, p.username, p.password) for p in map(urlsplit, urls)}) > 1:
        raise ValueError("REDIS_CLUSTER_URLS: every node must have the same scheme and credentials")
    if len(set(urls)) != len(urls):
        raise ValueError("REDIS_CLUSTER_URLS lists a node more than once")
    return tuple(urls)


def _minutes_to_seconds(name: str, value: str) -> str:
    try:
        return str(int(value) * 60)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number of minutes") from None


# Aeon's environment names, read when ours are not set: an Aeon deployment's environment works
# unchanged. Name -> (our field, how its value becomes ours).
AEON_ALIASES: dict[str, tuple[str, Callable[[str, str], str]]] = {
    "TELEGRAM_BOT_TOKEN": ("bot_token", lambda _, value: value),
    "TELEGRAM_WEBHOOK_SECRET": ("webhook_secret", lambda _, value: value),
    "ACCESS_TOKEN_EXPIRE_MINUTES": ("access_token_ttl", _minutes_to_seconds),
    "UPLOAD_DIR": ("media_dir", lambda _, value: value),
    "MAX_FILE_SIZE": ("max_upload_bytes", lambda _, value: value),
}


@dataclass(frozen=True, slots=True)
class AliasUse:
    alias: str
    variable: str  # ours
    used: bool  # False: ours is set too and wins


class AeonAliasSource(PydanticBaseSettingsSource):
    """Values of Aeon's variables (environment, then `.env`) for settings whose own variable is
    set in neither. Ranked below the environment and `.env`, so ours always win."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        environment: EnvSettingsSource,
        dotenv: DotEnvSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._sources = (environment.env_vars, dotenv.env_vars)

    def _lookup(self, name: str) -> str | None:
        for env_vars in self._sources:
            value = env_vars.get(name.lower())
            if value is not None and value != "":
                return value
        return None

    def uses(self) -> list[AliasUse]:
        """Each Aeon variable that is set, and whether it is used."""
        return [
            AliasUse(alias, field.upper(), self._lookup(field.upper()) is None)
            for alias, (field, _) in AEON_ALIASES.items()
            if self._lookup(alias) is not None
        ]

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ gives every value at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for use in self.uses():
            if use.used:
                field, convert = AEON_ALIASES[use.alias]
                raw = self._lookup(use.alias)
                if raw is not None:  # `used` means it was found
                    values[field] = convert(use.alias, raw)
        return values


class StarPackage(BaseModel):
    """Credits sold for Telegram Stars (BILLING_PACKAGES)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # In invoice payloads and button data, so short and plain.
    id: str = Field(pattern=r"^[a-z0-9_-]{1,16}$")
    stars: int = Field(gt=0, le=100_000)
    credits_micros: int = Field(gt=0)
    title: str = Field(min_length=1, max_length=32)  # Telegram's limit for an invoice title


DEFAULT_STAR_PACKAGES = (
    StarPackage(id="small", stars=50, credits_micros=1_000_000, title="1 credit"),
    StarPackage(id="large", stars=250, credits_micros=6_000_000, title="6 credits"),
)


_PACKAGES = TypeAdapter(list[StarPackage])


def _parse_packages(value: object) -> object:
    """BILLING_PACKAGES as JSON; every problem is reported under the variable's name."""
    if not isinstance(value, str):
        return value
    try:
        packages = _PACKAGES.validate_json(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ValueError(f"BILLING_PACKAGES is not a valid list of packages: {problems}") from None
    ids = [package.id for package in packages]
    if len(set(ids)) != len(ids):
        raise ValueError("BILLING_PACKAGES lists a package id more than once")
    return tuple(packages)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./data/app.db"
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    database_pool_recycle: int = Field(default=1800, gt=0)
    redis_url: str | None = None
    redis_cluster_urls: Annotated[tuple[str, ...], NoDecode] = ()
    redis_prefix: str = Field(default="aimessenger", pattern=r"^[\w.-]{1,64}$")
    secret_key: SecretStr | None = None
    bot_token: SecretStr | None = None
    bot_id: int | None = None
    telegram_test_env: bool = False
    init_data_max_age: int = Field(default=86400, gt=0)
    auth_cache_ttl: float = Field(default=60.0, ge=0)
    auth_cache_size: int = Field(default=10_000, ge=1)
    webapp_url: str | None = None
    dev_login: bool | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    media_dir: Path = DATA_DIR / "media"
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    media_quota_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    media_uploads_per_minute: int = Field(default=30, gt=0)
    media_url_ttl: int = Field(default=3600, gt=0)
    sends_per_minute: int = Field(default=60, ge=1)
    send_burst: int = Field(default=30, ge=1)
    chat_creates_per_hour: int = Field(default=30, ge=1)
    chat_create_burst: int = Field(default=10, ge=1)
    invites_per_hour: int = Field(default=100, ge=1)
    invite_burst: int = Field(default=200, ge=1)
    access_token_ttl: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl: int = Field(default=30 * 86400, gt=0)
    public_base_url: str | None = None
    admin_telegram_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    ws_per_message_deflate: bool = False
    ws_ping_interval: float = Field(default=20.0, gt=0)
    ws_ping_timeout: float = Field(default=20.0, gt=0)
    ws_send_queue: int = Field(default=256, ge=8)
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    ws_auth_timeout: float = Field(default=10.0, gt=0)
    ws_send_timeout: float = Field(default=10.0, gt=0)
    ws_close_timeout: float = Field(default=5.0, gt=0)
    ws_presence_grace: float = Field(default=5.0, ge=0)
    ws_gap_grace: float = Field(default=0.15, ge=0)
    ws_resume_grace: float = Field(default=2.0, ge=0)
    presence_max_group_size: int = Field(default=100, ge=0)
    ws_typing_ttl: float = Field(default=6.0, gt=0)
    bot_username: str | None = None
    ai_max_reply_tokens: int = Field(default=1024, ge=16)
    ai_max_concurrent_replies: int = Field(default=8, ge=1)
    ai_daily_token_allowance: int = Field(default=200_000, ge=0)
    ai_user_replies_per_minute: int = Field(default=10, ge=1)
    ai_group_always_replies_per_minute: int = Field(default=6, ge=1)
    ai_reply_stale_after: float = Field(default=30.0, gt=0)
    ai_runner_enabled: bool = True
    telegram_api_base: str = "https://api.telegram.org"
    bot_mode: Literal["auto", "off", "polling", "webhook"] = "auto"
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/telegram/webhook"
    # A Fernet key (cryptography's `Fernet.generate_key()`): assistants' bot tokens are kept
    # encrypted with it; publishing an assistant as a bot is refused without it.
    assistant_bot_token_key: SecretStr | None = None
    metrics_token: SecretStr | None = None
    notify_interval: float = Field(default=60.0, ge=0)
    telegram_draft_interval: float = Field(default=0.5, gt=0)
    telegram_edit_interval: float = Field(default=1.0, gt=0)
    telegram_group_edit_interval: float = Field(default=3.0, gt=0)
    telegram_group_edits_per_minute: int = Field(default=20, ge=1)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    llm_models: str | None = None
    llm_models_file: Path | None = None
    llm_default_model: str | None = None
    llm_request_timeout: float = Field(default=60.0, gt=0)
    # The AI's senses: catalogue models of kind transcription, speech and image. Each endpoint
    # defaults to OPENAI_BASE_URL and uses OPENAI_API_KEY (a local Whisper server works too).
    transcription_model: str = "whisper-1"
    transcription_base_url: str | None = None
    speech_model: str = "tts-1"
    speech_base_url: str | None = None
    speech_voice: str = Field(default="alloy", min_length=1, max_length=32)
    image_model: str = "gpt-image-1"
    image_base_url: str | None = None
    # Assistants' knowledge: a catalogue model of kind embedding, at EMBEDDINGS_BASE_URL
    # (default OPENAI_BASE_URL) with OPENAI_API_KEY; a local embeddings server works too.
    embeddings_model: str = "text-embedding-3-small"
    embeddings_base_url: str | None = None
    billing_enabled: bool = True
    billing_starting_grant_micros: int = Field(default=1_000_000, ge=0)
    billing_daily_free_micros: int = Field(default=0, ge=0)
    billing_packages: Annotated[tuple[StarPackage, ...], NoDecode] = DEFAULT_STAR_PACKAGES

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not isinstance(env_settings, EnvSettingsSource) or not isinstance(
            dotenv_settings, DotEnvSettingsSource
        ):
            raise TypeError("pydantic-settings gave sources of unexpected types")
        aliases = AeonAliasSource(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, aliases, file_secret_settings

    @field_validator("database_url")
    @classmethod
    def _normalize_database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator(
        "redis_url",
        "webapp_url",
        "dev_login",
        "bot_username",
        "openai_api_key",
        "openai_base_url",
        "anthropic_api_key",
        "anthropic_base_url",
        "llm_models",
        "llm_models_file",
        "llm_default_model",
        "transcription_base_url",
        "speech_base_url",
        "image_base_url",
        "embeddings_base_url",
        "metrics_token",
        "assistant_bot_token_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_base_url", mode="before")
    @classmethod
    def _absolute_base_url(cls, value: object) -> object:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ValueError("PUBLIC_BASE_URL must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("assistant_bot_token_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            TokenCipher(value.get_secret_value())  # a malformed key fails at start-up
        return value

    @field_validator("bot_id", mode="before")
    @classmethod
    def _empty_bot_id_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("cors_origins", "admin_telegram_ids", mode="before")
    @classmethod
    def _parse_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("redis_cluster_urls", mode="before")
    @classmethod
    def _parse_cluster_urls(cls, value: object) -> object:
        urls = _split_csv(value)
        return _cluster_urls(urls) if isinstance(urls, list) else urls

    @field_validator("billing_packages", mode="before")
    @classmethod
    def _billing_packages(cls, value: object) -> object:
        return _parse_packages(value)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("CORS_ORIGINS may not contain '*': list the Mini App origins")
        return value

    @model_validator(mode="after")
    def _one_redis(self) -> Settings:
        if self.redis_url is not None and self.redis_cluster_urls:
            raise ConfigurationError(
                "REDIS_URL and REDIS_CLUSTER_URLS are both set: set REDIS_URL for one Redis "
                "server, REDIS_CLUSTER_URLS for a Redis Cluster"
            )
        return self

    @model_validator(mode="after")
    def _production_requirements(self) -> Settings:
        if self.environment != "production":
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < 32:
            raise ConfigurationError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        if self.bot_token is None and self.bot_id is None:
            raise ConfigurationError("BOT_TOKEN or BOT_ID must be set in production")
        if self.dev_login:
            raise ConfigurationError("DEV_LOGIN signs initData for anyone: never in production")
        return self

    @property
    def redis_target(self) -> RedisTarget | None:
        """Where Redis is: the cluster of REDIS_CLUSTER_URLS, the server of REDIS_URL, or
        nowhere (None: one process, its broker, presence and rate limits in memory)."""
        if self.redis_cluster_urls:
            return RedisTarget(self.redis_cluster_urls, cluster=True)
        if self.redis_url is not None:
            return RedisTarget((self.redis_url,))
        return None

    @property
    def dev_login_enabled(self) -> bool:
        """`/app/dev` answers: DEV_LOGIN, which defaults to on in development only."""
        return self.environment == "development" if self.dev_login is None else self.dev_login

    def secret_key_value(self) -> str:
        """The signing key; outside production a missing key is generated once under data/."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _development_secret("secret_key")

    def bot_token_value(self) -> str | None:
        """The token initData is checked with; in development without BOT_TOKEN or BOT_ID, the
        token `python -m core.devtools sign-init-data` signs with."""
        if self.bot_token is not None and self.bot_token.get_secret_value():
            return self.bot_token.get_secret_value()
        if self.environment == "development" and self.bot_id is None:
            return development_bot_token()
        return None

    def api_bot_mode(self) -> Literal["off", "polling", "webhook"]:
        """How the API process runs the bot. "auto": polling in a single-process server with a
        token (so `make run` is the whole product), else off (run `python -m bot`)."""
        if self.bot_mode != "auto":
            return self.bot_mode
        return "polling" if self.bot_token is not None and self.workers == 1 else "off"

    def bot_telegram_id(self) -> int | None:
        """The bot's own Telegram user id: BOT_ID, else the number a bot token starts with."""
        if self.bot_id is not None:
            return self.bot_id
        token = self.bot_token_value()
        prefix = token.partition(":")[0] if token else ""
        return int(prefix) if prefix.isdigit() else None


def _random_secret() -> str:
    return secrets.token_urlsafe(48)


def _random_bot_token() -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    bot_id = secrets.randbelow(9 * 10**9) + 10**9
    return f"{bot_id}:{''.join(secrets.choice(alphabet) for _ in range(35))}"


def development_bot_token() -> str:
    """A bot-token-shaped value kept in data/: development initData is signed and checked with
    it, so that no bypass of the check is ever needed."""
    return _development_secret("dev_bot_token", generate=_random_bot_token)


def _development_secret(name: str, *, generate: Callable[[], str] = _random_secret) -> str:
    """A random value kept in data/ so that it survives restarts of a development server."""
    path = DATA_DIR / f".{name}"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        value = generate()
        path.write_text(value)
        path.chmod(0o600)
        logger.info("generated a development %s in %s", name, path)
        return value


def log_alias_uses(settings_cls: type[Settings] = Settings) -> None:
    """Says at start-up which of Aeon's variable names this environment was read with."""
    sources = (EnvSettingsSource(settings_cls), DotEnvSettingsSource(settings_cls))
    for use in AeonAliasSource(settings_cls, *sources).uses():
        if use.used:
            logger.info("settings: %s read from Aeon's %s", use.variable, use.alias)
        else:
            logger.info("settings: %s is set, so Aeon's %s is ignored", use.variable, use.alias)


def webapp_link(webapp_url: str | None, start_param: str | None = None) -> str | None:
    """The Mini App's URL, opened with a `startapp` parameter (e.g. `chat_12`, `join_<token>`)."""
    if not webapp_url or not start_param:
        return webapp_url or None
    return f"{webapp_url}{'&' if '?' in webapp_url else '?'}startapp={start_param}"


@lru_cache
def get_settings() -> Settings:
    """Settings for entry points (CLI, `python -m ...`); the app receives its own explicitly."""
    return Settings()
