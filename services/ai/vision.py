"""Photos the AI is asked about, and what it answers when its model cannot see them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from llm.catalogue import ModelInfo
from services.ai.context import message_images
from services.ai.runtime import AiRuntime


async def has_images(session: AsyncSession, chat_id: int, message_id: int | None) -> bool:
    if message_id is None:
        return False
    return bool(await message_images(session, chat_id, [message_id]))


def blind_reply(ai: AiRuntime, model: ModelInfo) -> str:
    """The AI's fixed answer to a photo its chat's model cannot see (the model is not asked)."""
    seeing = [m.display_name for m in ai.catalogue.usable() if m.vision]
    text = f"{model.display_name} can't see images."
    if seeing:
        text += f" Models that can: {', '.join(seeing)}."
    return text + " Change the model with /model or in the chat's settings."


async def refusal_for(
    session: AsyncSession, ai: AiRuntime, model: ModelInfo, chat_id: int, message_id: int | None
) -> str | None:
    """The fixed answer when the message asks `model` about a photo it cannot see."""
    if model.vision or not await has_images(session, chat_id, message_id):
        return None
    return blind_reply(ai, model)
