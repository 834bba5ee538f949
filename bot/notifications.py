"""Telegram notifications for Mini App messages that arrive while the recipient is offline.

The notifier subscribes to the broker's topic of new messages (every process that runs the bot
does; the sockets' routes would bring only the messages of users online here). At most one per
chat per interval (a cluster-wide claim, so that several processes that all see the event send
it once), only to users who let the bot write to them, have notifications on
and have not muted the chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from sqlalchemy import select

from bot.context import app_button
from core.broker import Unsubscribe
from core.db import read_session
from core.envelope import Envelope, topic_route
from models import Chat, ChatMember, ChatType, User
from services.messages import NEW_MESSAGES_TOPIC
from wiring.process import Process

logger = logging.getLogger(__name__)

PREVIEW_LENGTH = 120


class Notifier:
    def __init__(self, bot: Bot, process: Process) -> None:
        self._bot = bot
        self._sessionmaker = process.sessionmaker
        self._presence = process.presence
        self._webapp_url = process.settings.webapp_url
        self._interval = process.settings.notify_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Unsubscribe | None = None

    @classmethod
    async def start(cls, bot: Bot, process: Process) -> Notifier:
        notifier = cls(bot, process)
        notifier._unsubscribe = await process.broker.subscribe(
            topic_route(NEW_MESSAGES_TOPIC), notifier._on_envelope
        )
        return notifier

    def _on_envelope(self, envelope: Envelope) -> None:
        task = asyncio.get_running_loop().create_task(self._notify(envelope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            await self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _notify(self, envelope: Envelope) -> None:
        frame: dict[str, Any] = json.loads(envelope.frame)
        message = frame.get("message") or {}
        sender_id = message.get("sender_id")
        recipients = [user_id for user_id in envelope.user_ids if user_id != sender_id]
        if envelope.chat_id is None or not recipients:
            return
        offline = set(recipients) - await self._presence.online(recipients)
        if not offline:
            return
        async with read_session(self._sessionmaker) as session:
            rows = (
                await session.execute(
                    select(User, Chat)
                    .join(ChatMember, ChatMember.user_id == User.id)
                    .join(Chat, Chat.id == ChatMember.chat_id)
                    .where(
                        Chat.id == envelope.chat_id,
                        User.id.in_(offline),
                        User.is_bot.is_(False),
                        User.allows_write_to_pm.is_(True),
                        User.notifications_enabled.is_(True),
                        ChatMember.is_muted.is_(False),
                        # Telegram groups and the AI chat live in Telegram already.
                        Chat.type != ChatType.AI,
                        Chat.telegram_chat_id.is_(None),
                    )
                    # One member after another in a stable order: a later member's note
                    # follows what was decided for an earlier one.
                    .order_by(User.id)
                )
            ).all()
        for user, chat in rows:
            if await self._presence.claim(f"notify:{user.id}:{chat.id}", self._interval):
                await self._send(user, chat, message)

    async def _send(self, user: User, chat: Chat, message: dict[str, Any]) -> None:
        sender = message.get("sender") or {}
        who = sender.get("first_name") or "Someone"
        where = f" in {chat.title}" if chat.type == ChatType.GROUP and chat.title else ""
        preview = (message.get("text") or f"[{message.get('message_type', 'message')}]").strip()
        if len(preview) > PREVIEW_LENGTH:
            preview = preview[: PREVIEW_LENGTH - 1] + "…"
        keyboard = app_button(self._webapp_url, "Open", f"chat_{chat.id}")
        try:
            await self._bot.send_message(
                chat_id=user.telegram_id, text=f"💬 {who}{where}: {preview}", reply_markup=keyboard
            )
        except TelegramAPIError as error:
            logger.info("could not notify a user: %s", error)
