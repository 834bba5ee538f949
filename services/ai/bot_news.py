"""News of assistants' own bots for every process that serves them: a bot was added, replaced
or removed, or its assistant archived (`services.ai.assistant_bots` and `assistants` send it;
the bot's `AssistantBots` starts or stops serving that bot)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.envelope import Envelope, encode_envelope, encode_frame
from core.outbox import stage
from models import AssistantBot

BOTS_SERVICE = "assistant_bots"


def changed_envelope(telegram_bot_id: int) -> bytes:
    """Tells every process's bot to look at this assistant bot again."""
    frame = encode_frame({"telegram_bot_id": telegram_bot_id})
    return encode_envelope([], frame, service=BOTS_SERVICE)


def changed_bot_id(envelope: Envelope) -> int | None:
    """The bot a `changed_envelope` is about; None for any other envelope."""
    if envelope.service != BOTS_SERVICE:
        return None
    return int(json.loads(envelope.frame)["telegram_bot_id"])


async def bot_of_assistant(session: AsyncSession, assistant_id: int) -> int | None:
    """The Telegram id of the bot an assistant answers as, if it has one."""
    return await session.scalar(
        select(AssistantBot.telegram_bot_id).where(AssistantBot.assistant_id == assistant_id)
    )


async def announce_assistant_changed(session: AsyncSession, assistant_id: int) -> None:
    """After this unit of work commits, the assistant's bot (if it has one) is looked at again
    in every process (archived: no longer served)."""
    telegram_bot_id = await bot_of_assistant(session, assistant_id)
    if telegram_bot_id is not None:
        stage(session, changed_envelope(telegram_bot_id))
