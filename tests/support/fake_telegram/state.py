"""What Telegram knows for one test: the bot, the chats and users it saw, the messages in
them, the queue of updates; and the bookkeeping every method shares."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_telegram.updates import (
    TgUser,
    embedded,
    message_ids,
)
from tests.support.fake_telegram.wire import (
    ApiError,
    Json,
    chat_type_of,
)


@dataclass
class Poll:
    """A getUpdates long poll in progress."""

    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False


_MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")


class TelegramState:
    """The Telegram side of one test: the bot, the chats, users and messages it knows, and
    the updates waiting for getUpdates."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = "test_ai_bot"
        self.bot_first_name = "AI Assistant"
        # (chat_id, message_id) -> the bot's messages, as edited (deleted ones are removed)
        self.messages: dict[tuple[int, int], Json] = {}
        # (chat_id, draft_id) -> the last sendMessageDraft text and entities; a message the
        # bot sends in the chat ends its drafts, as in Telegram
        self.drafts: dict[tuple[int, int], Json] = {}
        self.webhook: Json | None = None  # the setWebhook parameters, while one is set
        self.menu_buttons: dict[int | None, Json] = {}  # chat_id (None: the default) -> button
        self.refunded_charges: set[str] = set()
        self.invoice_links: dict[str, Json] = {}  # link -> createInvoiceLink parameters
        # file_id -> (file_path, bytes): what users sent (getFile and the file download) and
        # what the bot uploaded (sendPhoto)
        self.files: dict[str, tuple[str, bytes]] = {}
        self._commands: dict[tuple[str, str], list[Json]] = {}
        self._pending: deque[Json] = deque()
        self._allowed_updates: frozenset[str] | None = None
        self._admins: dict[int, tuple[int | None, list[int]]] = {}
        self._chats: dict[int, Json] = {}
        self._users: dict[int, Json] = {}
        self._incoming: set[tuple[int, int]] = set()
        self._known_messages: dict[tuple[int, int], Json] = {}
        self._last_message_id: dict[int, int] = {}
        self._answered: set[str] = set()
        self._migrated: dict[int, int] = {}
        self._blocked: set[int] = set()
        self._poll: Poll | None = None
        self._closed = False

    @property
    def bot_user(self) -> TgUser:
        return TgUser(
            self.bot_id,
            self.bot_first_name,
            self.bot_username,
            is_bot=True,
            language_code=None,
        )

    def _wake_poll(self) -> None:
        if self._poll is not None:
            self._poll.wakeup.set()

    def _remember(self, update: Json) -> None:
        for kind, chat in _chats_in(update):
            if kind == "from":
                self._users[int(chat["id"])] = chat
            else:
                self._chats.setdefault(int(chat["id"]), chat)
        for kind in _MESSAGE_KINDS:
            message = update.get(kind)
            if isinstance(message, dict):
                self._remember_message(message)
        for kind in ("callback_query", "pre_checkout_query"):
            query = update.get(kind)
            if isinstance(query, dict):
                self._answered.discard(str(query["id"]))

    def _remember_message(self, message: Json) -> None:
        chat_id, message_id = int(message["chat"]["id"]), int(message["message_id"])
        self._incoming.add((chat_id, message_id))
        self._known_messages[(chat_id, message_id)] = embedded(message)
        last = self._last_message_id.get(chat_id, 0)
        self._last_message_id[chat_id] = max(last, message_id)
        migrate_to = message.get("migrate_to_chat_id")
        if migrate_to is not None:
            self._migrated[chat_id] = int(migrate_to)
            self._chats[int(migrate_to)] = {
                **self._chats.get(chat_id, {}),
                "id": int(migrate_to),
                "type": "supergroup",
            }

    def _chat(self, chat_id: int) -> Json:
        return dict(self._chats.get(chat_id) or {"id": chat_id, "type": chat_type_of(chat_id)})

    def _user(self, user_id: int) -> Json:
        if user_id == self.bot_id:
            return self.bot_user.as_dict()
        known = self._users.get(user_id)
        return dict(known) if known else {"id": user_id, "is_bot": False, "first_name": "User"}

    def _check_can_send(self, chat_id: int) -> None:
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def add_file(self, data: bytes, directory: str, extension: str) -> Json:
        """A file Telegram holds (a user's upload, or the bot's), as a File-like object:
        file_id, file_unique_id, file_size."""
        unique = secrets.token_hex(8)
        file_id = f"{directory}-{unique}"
        self.files[file_id] = (f"{directory}/file_{len(self.files)}.{extension}", data)
        return {"file_id": file_id, "file_unique_id": unique, "file_size": len(data)}

    def file_by_path(self, path: str) -> bytes | None:
        return next((data for known, data in self.files.values() if known == path), None)

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message_ids.seen(message_id)
        return message_id


def commands_key(scope: Any, language_code: str) -> tuple[str, str]:
    scope = scope if isinstance(scope, dict) else {"type": "default"}
    return json.dumps(scope, sort_keys=True), language_code


def _chats_in(value: Any, key: str = "") -> Iterator[tuple[str, Json]]:
    """("chat" | "from", object) for every chat and user an update mentions."""
    if isinstance(value, dict):
        if key in ("chat", "sender_chat") and "type" in value:
            yield "chat", value
        elif key in ("from", "user") and "is_bot" in value:
            yield "from", value
        for name, item in value.items():
            yield from _chats_in(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _chats_in(item, key)
