"""The AI participant's configuration in one process: its models, its quota, its bot user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ServiceUnavailable
from llm.base import LLMError
from llm.catalogue import Catalogue, ModelInfo
from models import Chat, User
from services.billing.quota import QuotaPolicy
from services.knowledge.runtime import KnowledgeRuntime
from services.users import ensure_bot_user


@dataclass(slots=True)
class AiRuntime:
    """The AI participant's configuration in one process."""

    catalogue: Catalogue
    quota: QuotaPolicy
    bot_telegram_id: int
    bot_name: str
    bot_username: str | None
    max_reply_tokens: int
    user_replies_per_minute: int
    chat_always_replies_per_minute: int
    # Assistants answer from their documents when this process can embed questions.
    knowledge: KnowledgeRuntime | None = None

    def model_for(self, chat: Chat) -> ModelInfo:
        try:
            if chat.ai_model:
                return self.catalogue.get(chat.ai_model)
            default = self.catalogue.default()
        except LLMError as exc:
            raise ServiceUnavailable(exc.message, code="ai_not_configured") from None
        if default is None:
            raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
        return default

    def max_tokens_for(self, model: ModelInfo) -> int:
        return min(model.max_output_tokens, self.max_reply_tokens)

    async def bot_user(self, session: AsyncSession) -> User:
        """The AI's own user row (created when missing; no write when it is as it should be)."""
        return await ensure_bot_user(
            session, self.bot_telegram_id, self.bot_name, username=self.bot_username
        )
