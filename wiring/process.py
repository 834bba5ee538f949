"""What every process of this backend holds, built one way from its settings: the API processes
(`webapp_api.context.AppContext` adds the socket hub, the bot when it runs there, the workers),
the bot's own process (`python -m bot`) and the operator commands (`python -m cli.admin`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.broker import Broker, create_broker
from core.db import create_engine, create_sessionmaker
from core.presence import PresenceStore, create_presence
from core.settings import ConfigurationError, Settings
from core.signing import media_urls
from core.storage import Storage, create_storage
from llm.catalogue import Catalogue, load_catalogue
from llm.embeddings import EmbeddingsClient
from services.ai.runtime import AiRuntime
from services.billing.config import BillingConfig
from services.billing.quota import DailyTokenAllowance, LedgerQuota, QuotaPolicy
from services.knowledge.runtime import KnowledgeRuntime
from services.media.config import MediaConfig

AI_BOT_NAME = "AI Assistant"


def quota_policy(settings: Settings, billing: BillingConfig) -> QuotaPolicy:
    """Who pays for AI replies: the ledger with billing on, else a daily token allowance."""
    if billing.enabled:
        return LedgerQuota(billing)
    return DailyTokenAllowance(settings.ai_daily_token_allowance)


def knowledge_runtime(settings: Settings, catalogue: Catalogue) -> KnowledgeRuntime | None:
    """Assistants' knowledge: EMBEDDINGS_MODEL at EMBEDDINGS_BASE_URL (default OPENAI_BASE_URL)
    with OPENAI_API_KEY, or at its own server (an openai_compatible entry of LLM_MODELS); None
    when no embeddings endpoint is configured."""
    model = catalogue.lookup(settings.embeddings_model)
    if model is None or model.kind != "embedding":
        raise ConfigurationError(
            f"EMBEDDINGS_MODEL names no embedding model of the catalogue:"
            f" {settings.embeddings_model!r} (add it to LLM_MODELS with its kind)"
        )
    if model.provider == "openai_compatible":
        api_key, base_url = model.api_key, model.base_url
    else:
        api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        base_url = settings.embeddings_base_url or settings.openai_base_url
    own_server = model.provider == "openai_compatible" or settings.embeddings_base_url is not None
    if not api_key and not own_server:
        return None
    client = EmbeddingsClient(
        model, api_key=api_key, base_url=base_url, timeout=settings.llm_request_timeout
    )
    return KnowledgeRuntime(client)


def ai_runtime(
    settings: Settings,
    billing: BillingConfig,
    catalogue: Catalogue,
    knowledge: KnowledgeRuntime | None,
) -> AiRuntime | None:
    """The AI participant's configuration; None when this server cannot tell who its bot is
    (no BOT_TOKEN or BOT_ID)."""
    bot_telegram_id = settings.bot_telegram_id()
    if bot_telegram_id is None:
        return None
    return AiRuntime(
        catalogue=catalogue,
        quota=quota_policy(settings, billing),
        bot_telegram_id=bot_telegram_id,
        bot_name=AI_BOT_NAME,
        bot_username=settings.bot_username,
        max_reply_tokens=settings.ai_max_reply_tokens,
        user_replies_per_minute=settings.ai_user_replies_per_minute,
        chat_always_replies_per_minute=settings.ai_group_always_replies_per_minute,
        knowledge=knowledge,
    )


@dataclass(slots=True)
class Process:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # In-process, or Redis across processes: whatever a unit of work here publishes reaches
    # every process's listeners.
    broker: Broker
    presence: PresenceStore
    media: MediaConfig
    storage: Storage
    billing: BillingConfig
    ai: AiRuntime | None
    # Assistants' knowledge (embeddings); None without an embeddings endpoint.
    knowledge: KnowledgeRuntime | None

    @classmethod
    async def open(cls, settings: Settings) -> Process:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout,
            pool_recycle=settings.database_pool_recycle,
        )
        broker = create_broker(settings.redis_target, settings.redis_prefix)
        await broker.start()
        presence = create_presence(settings.redis_target, settings.redis_prefix)
        await presence.start()
        sessionmaker = create_sessionmaker(
            engine, info={"media_urls": media_urls(settings, settings.secret_key_value())}
        )
        billing = BillingConfig.from_settings(settings)
        catalogue = load_catalogue(settings)
        knowledge = knowledge_runtime(settings, catalogue)
        return cls(
            settings,
            engine,
            sessionmaker,
            broker,
            presence,
            MediaConfig.from_settings(settings),
            create_storage(settings),
            billing,
            ai_runtime(settings, billing, catalogue, knowledge),
            knowledge,
        )

    def parts(self) -> dict[str, Any]:
        """The fields, for a process that holds more (`AppContext(**process.parts(), ...)`)."""
        return {part.name: getattr(self, part.name) for part in dataclasses.fields(Process)}

    async def close(self) -> None:
        if self.ai is not None:
            await self.ai.catalogue.close()
        if self.knowledge is not None:
            await self.knowledge.close()
        await self.presence.close()
        await self.broker.close()
        await self.engine.dispose()
