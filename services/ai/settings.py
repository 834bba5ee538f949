"""A chat's AI settings: mode (off, mention, always), model, persona, temperature, and whether
it also answers with a voice note."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, ServiceUnavailable
from llm.base import LLMError
from models import AiMode, ChatType, User
from services.access import Membership, require_membership
from services.ai.policy import effective_mode
from services.ai.runtime import AiRuntime
from services.chats.members import ensure_member
from services.views.ai import AiSettingsOut

PERSONA_MAX_LENGTH = 4000


def ai_settings_of(membership: Membership) -> AiSettingsOut:
    chat = membership.chat
    return AiSettingsOut(
        chat_id=chat.id,
        mode=effective_mode(chat),
        model=chat.ai_model,
        persona=chat.ai_persona,
        temperature=chat.ai_temperature,
        voice_replies=chat.ai_voice_replies,
        can_edit=_can_edit(membership),
    )


def _can_edit(membership: Membership) -> bool:
    if membership.chat.type == ChatType.AI:
        return True
    return membership.chat.type == ChatType.GROUP and membership.is_manager


async def get_ai_settings(session: AsyncSession, user: User, chat_id: int) -> AiSettingsOut:
    return ai_settings_of(await require_membership(session, chat_id, user.id))


async def update_ai_settings(
    session: AsyncSession,
    ai: AiRuntime | None,
    user: User,
    chat_id: int,
    changes: dict[str, Any],
    *,
    telegram_admin: bool = False,
) -> AiSettingsOut:
    """`telegram_admin`: the bot checked with Telegram that the user administers the group this
    chat mirrors (Telegram's roles rule there, not ours)."""
    membership = await require_membership(session, chat_id, user.id)
    chat = membership.chat
    if chat.type == ChatType.PRIVATE:
        raise BadRequest("The AI takes part in groups and AI chats only", code="not_ai_capable")
    if not (_can_edit(membership) or (telegram_admin and chat.telegram_chat_id is not None)):
        membership.require_manager()
    if "mode" in changes:
        if chat.type == ChatType.AI and changes["mode"] != AiMode.ALWAYS:
            raise BadRequest("The direct AI chat always answers", code="mode_fixed")
        chat.ai_mode = changes["mode"]
        if chat.type == ChatType.GROUP and chat.ai_mode != AiMode.OFF and ai is not None:
            # Turning the AI on is how a Mini App group brings it in (it takes part as a member).
            await ensure_member(session, chat, await ai.bot_user(session))
    if changes.get("model") is not None:
        if ai is None:
            raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
        try:
            chat.ai_model = ai.catalogue.get(changes["model"]).id
        except LLMError:
            raise BadRequest("Unknown or unavailable model", code="unknown_model") from None
    elif "model" in changes:
        chat.ai_model = None
    if "persona" in changes:
        persona = (changes["persona"] or "").strip()
        chat.ai_persona = persona or None
    if "temperature" in changes:
        chat.ai_temperature = changes["temperature"]
    if "voice_replies" in changes:
        if changes["voice_replies"] and (ai is None or ai.catalogue.media_model("speech") is None):
            raise ServiceUnavailable("Speech is not configured", code="ai_speech_not_configured")
        chat.ai_voice_replies = changes["voice_replies"]
    await session.flush()
    return ai_settings_of(membership)
