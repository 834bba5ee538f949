"""The AI participant's configuration in one process: its models, its quota, its bot user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ServiceUnavailable
from llm.base import LLMError
from llm.catalogue import Catalogue, ModelInfo
from models import Assistant, Chat, User
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

    def model_for(self, chat: Chat, assistant: Assistant | None = None) -> ModelInfo:
        """The assistant's model, else the chat's, else the server's default."""
        chosen = (assistant.model if assistant is not None else None) or chat.ai_model
        try:
            if chosen:
                return self.catalogue.get(chosen)
            default = self.catalogue.default()
        except LLMError as exc:
            raise ServiceUnavailable(exc.message, code="ai_not_configured") from None
        if default is None:
            raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
        return default

    def max_tokens_for(self, model: ModelInfo, assistant: Assistant | None = None) -> int:
        """The model's and the server's limit, and the assistant's when it sets a lower one."""
        limit = min(model.max_output_tokens, self.max_reply_tokens)
        if assistant is not None and assistant.max_reply_tokens is not None:
            return min(limit, assistant.max_reply_tokens)
        return limit

    async def bot_user(self, session: AsyncSession) -> User:
        """The AI's own user row (created when missing; no write when it is as it should be)."""
        return await ensure_bot_user(
            session, self.bot_telegram_id, self.bot_name, username=self.bot_username
        )


async def chat_assistant(session: AsyncSession, chat: Chat) -> Assistant | None:
    """The assistant that is this chat's AI (None: the built-in one)."""
    if chat.assistant_id is None:
        return None
    return await session.get(Assistant, chat.assistant_id)


def temperature_for(chat: Chat, assistant: Assistant | None) -> float | None:
    """An assistant's settings win; what it leaves unset falls back to the chat's."""
    if assistant is not None and assistant.temperature is not None:
        return assistant.temperature
    return chat.ai_temperature
