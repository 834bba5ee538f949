"""One test's fake Bot API: the calls the bot made, the updates it will get, the failures
planned for it, the state of its chats, and each method as Telegram answers it."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiogram.types import Update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from tests.support.fake_telegram.entities import (
    formatted_text,
)
from tests.support.fake_telegram.updates import (
    ADMIN_RIGHTS,
    TgChat,
    TgUser,
    embedded,
    message_ids,
    update_ids,
)
from tests.support.fake_telegram.wire import (
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    ApiError,
    Json,
    as_int,
    chat_type_of,
    error_response,
    flag,
    inline_markup,
    read_params,
    required_chat_id,
    required_int,
    required_str,
)
from tests.support.telegram import TEST_BOT_TOKEN


@dataclass(frozen=True, slots=True)
class RecordedCall:
    method: str  # as Telegram names it (sendMessage), whatever case the client used
    params: dict[str, Any]  # form fields with their JSON values decoded
    at: float  # time.monotonic()
    token: str


@dataclass
class _Failure:
    code: int
    description: str
    parameters: Json
    times: int


@dataclass
class _Described:
    """A result with Telegram's optional description (setWebhook: "Webhook was set")."""

    result: Any
    description: str


@dataclass
class _Poll:
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False


_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note"}
    | {"upload_video_note"}
)


_MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")


class FakeTelegram:
    """One test's view of the fake Bot API: what the bot called, the updates it will get, the
    failures planned for it, and the state of the chats it wrote in."""

    def __init__(self, base_url: str, *, token: str = TEST_BOT_TOKEN) -> None:
        self.base_url = base_url
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = "test_ai_bot"
        self.bot_first_name = "AI Assistant"
        self.calls: list[RecordedCall] = []
        # (chat_id, message_id) -> the bot's messages, as edited (deleted ones are removed)
        self.messages: dict[tuple[int, int], Json] = {}
        # (chat_id, draft_id) -> the last sendMessageDraft text and entities; a message the
        # bot sends in the chat ends its drafts, as in Telegram
        self.drafts: dict[tuple[int, int], Json] = {}
        self.webhook: Json | None = None  # the setWebhook parameters, while one is set
        self.menu_buttons: dict[int | None, Json] = {}  # chat_id (None: the default) -> button
        self.refunded_charges: set[str] = set()
        self.invoice_links: dict[str, Json] = {}  # link -> createInvoiceLink parameters
        self._commands: dict[tuple[str, str], list[Json]] = {}
        self._pending: deque[Json] = deque()
        self._allowed_updates: frozenset[str] | None = None
        self._failures: dict[str, deque[_Failure]] = {}
        self._admins: dict[int, tuple[int | None, list[int]]] = {}
        self._chats: dict[int, Json] = {}
        self._users: dict[int, Json] = {}
        self._incoming: set[tuple[int, int]] = set()
        self._known_messages: dict[tuple[int, int], Json] = {}
        self._last_message_id: dict[int, int] = {}
        self._answered: set[str] = set()
        self._migrated: dict[int, int] = {}
        self._blocked: set[int] = set()
        self._call_event = asyncio.Event()
        self._poll: _Poll | None = None
        self._closed = False
        self._handlers: dict[str, Callable[[Json], Any]] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "sendMessageDraft": self._send_message_draft,
            "sendChatAction": self._send_chat_action,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "createInvoiceLink": self._create_invoice_link,
            "refundStarPayment": self._refund_star_payment,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
        }
        self._canonical = {name.lower(): name for name in [*self._handlers, "getUpdates"]}

    # --- the test's side ---

    @property
    def bot_user(self) -> TgUser:
        return TgUser(
            self.bot_id,
            self.bot_first_name,
            self.bot_username,
            is_bot=True,
            language_code=None,
        )

    def calls_to(self, method: str) -> list[RecordedCall]:
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[RecordedCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        nth: int = 1,
    ) -> RecordedCall:
        """The nth call to `method` (that `predicate` accepts), made already or awaited."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._call_event
                    matching = [
                        call
                        for call in self.calls_to(method)
                        if predicate is None or predicate(call)
                    ]
                    if len(matching) >= nth:
                        return matching[nth - 1]
                    await event.wait()
        except TimeoutError:
            made = ", ".join(call.method for call in self.calls) or "none"
            raise TimeoutError(
                f"no call #{nth} to {method} within {timeout} s; calls made: {made}"
            ) from None

    def push_update(self, update: Json) -> int:
        """Queue an update for getUpdates; it gets a new update_id, which is returned."""
        update = {**copy.deepcopy(update), "update_id": next(update_ids)}
        Update.model_validate(update)  # a malformed update fails here, not in the Dispatcher
        self._remember(update)
        self._pending.append(update)
        self._wake_poll()
        return int(update["update_id"])

    @property
    def pending_updates(self) -> list[Json]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._pending)

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with an error. A 429 always carries
        retry_after (1 s unless given), as Telegram's do."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        parameters: Json = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else _DEFAULT_DESCRIPTIONS.get(error_code, "Unknown error")
            )
        failure = _Failure(error_code, description, parameters, times)
        self._failures.setdefault(method.lower(), deque()).append(failure)

    def set_admins(self, chat_id: int, user_ids: list[int], *, creator: int | None = None) -> None:
        """The chat's administrators (include fake.bot_id to make the bot one); `creator`, if
        given, is listed too, with status "creator". Everyone else is a "member"."""
        self._admins[chat_id] = (creator, [uid for uid in user_ids if uid != creator])
        self._chats.setdefault(chat_id, {"id": chat_id, "type": chat_type_of(chat_id)})

    def add_chat(self, chat: TgChat | Json) -> None:
        """Make a chat known (pushed updates do this for theirs): getChat answers for it."""
        data = chat.as_dict() if isinstance(chat, TgChat) else dict(chat)
        self._chats[int(data["id"])] = data

    def set_blocked(self, user_id: int, blocked: bool = True) -> None:
        """A user who blocked the bot: sending to them fails with 403."""
        if blocked:
            self._blocked.add(user_id)
        else:
            self._blocked.discard(user_id)

    def my_commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        return list(self._commands.get(_commands_key(scope, language_code), []))

    def close(self) -> None:
        """End a pending long poll (the test is over)."""
        self._closed = True
        self._wake_poll()

    # --- bookkeeping ---

    def _wake_poll(self) -> None:
        if self._poll is not None:
            self._poll.wakeup.set()

    def _record(self, method: str, params: Json, token: str) -> None:
        self.calls.append(RecordedCall(method, params, time.monotonic(), token))
        event, self._call_event = self._call_event, asyncio.Event()
        event.set()

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

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message_ids.seen(message_id)
        return message_id

    # --- serving ---

    async def handle(self, request: Request, token: str, method: str) -> Response:
        try:
            params = await read_params(request)
        except ApiError as error:
            return error_response(error)
        name = self._canonical.get(method.lower())
        self._record(name or method, params, token)
        try:
            if name is None:
                raise ApiError(404, "Not Found: method not found")
            self._planned_failure(name)
            if name == "getUpdates":
                result: Any = await self._get_updates(request.receive, params)
            else:
                result = self._handlers[name](params)
        except ApiError as error:
            return error_response(error)
        body: Json = {"ok": True, "result": result}
        if isinstance(result, _Described):
            body = {"ok": True, "result": result.result, "description": result.description}
        return JSONResponse(body)

    def _planned_failure(self, method: str) -> None:
        plans = self._failures.get(method.lower())
        if not plans:
            return
        failure = plans[0]
        failure.times -= 1
        if failure.times <= 0:
            plans.popleft()
        raise ApiError(failure.code, failure.description, dict(failure.parameters))

    async def _get_updates(self, receive: Receive, params: Json) -> list[Json]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = as_int(params.get("offset")) or 0
        limit = min(max(as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(as_int(params.get("timeout")) or 0, 0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(map(str, allowed)) or None
        self._confirm(offset)
        if self._poll is not None:
            self._poll.superseded = True
            self._poll.wakeup.set()
        poll = self._poll = _Poll()
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive, poll))
        watcher.add_done_callback(_consume)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                poll.wakeup.clear()
                updates = self._deliverable(limit)
                remaining = deadline - loop.time()
                if updates or poll.superseded or self._closed or remaining <= 0:
                    break
                if watcher.done():  # the client went away: nobody to answer
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await poll.wakeup.wait()
                except TimeoutError:
                    pass
        finally:
            watcher.cancel()
            if self._poll is poll:
                self._poll = None
        if poll.superseded:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return updates

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            while self._pending and self._pending[0]["update_id"] < offset:
                self._pending.popleft()
        elif offset < 0:
            while len(self._pending) > -offset:
                self._pending.popleft()

    def _deliverable(self, limit: int) -> list[Json]:
        def allowed(update: Json) -> bool:
            kind = next((key for key in update if key != "update_id"), "")
            if self._allowed_updates is None:
                return kind not in _DEFAULT_EXCLUDED_UPDATES
            return kind in self._allowed_updates

        # Telegram never creates the updates a bot did not ask for.
        self._pending = deque(update for update in self._pending if allowed(update))
        return [copy.deepcopy(update) for update in itertools.islice(self._pending, limit)]

    # --- methods ---

    def _get_me(self, params: Json) -> Json:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
        }

    def _set_webhook(self, params: Json) -> _Described:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params)
        if not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(map(str, allowed)) or None
        if flag(params, "drop_pending_updates"):
            self._pending.clear()
        self.webhook = dict(params)
        self._wake_poll()
        return _Described(True, "Webhook was set")

    def _delete_webhook(self, params: Json) -> _Described:
        if flag(params, "drop_pending_updates"):
            self._pending.clear()
        was_set, self.webhook = self.webhook is not None, None
        return _Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    def _get_webhook_info(self, params: Json) -> Json:
        info: Json = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook is not None:
            info.update(
                url=self.webhook["url"],
                max_connections=as_int(self.webhook.get("max_connections")) or 40,
                ip_address="149.154.167.220",
            )
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    def _set_my_commands(self, params: Json) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands is empty")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            valid = (
                isinstance(command, dict)
                and re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", "")))
                and 1 <= len(str(command.get("description", ""))) <= 256
            )
            if not valid:
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        key = _commands_key(params.get("scope"), str(params.get("language_code") or ""))
        self._commands[key] = [dict(command) for command in commands]
        return True

    def _get_my_commands(self, params: Json) -> list[Json]:
        key = _commands_key(params.get("scope"), str(params.get("language_code") or ""))
        return list(self._commands.get(key, []))

    def _delete_my_commands(self, params: Json) -> bool:
        key = _commands_key(params.get("scope"), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    def _set_chat_menu_button(self, params: Json) -> bool:
        chat_id = required_chat_id(params) if params.get("chat_id") not in (None, "") else None
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "default",
            "commands",
            "web_app",
        ):
            raise ApiError(400, "Bad Request: can't parse menu button JSON object")
        self.menu_buttons[chat_id] = dict(button)
        return True

    def _get_chat_menu_button(self, params: Json) -> Json:
        chat_id = required_chat_id(params) if params.get("chat_id") not in (None, "") else None
        button = self.menu_buttons.get(chat_id)
        if (button is None or button["type"] == "default") and chat_id is not None:
            button = self.menu_buttons.get(None)
        if button is None or button["type"] == "default":
            return {"type": "commands"}
        return dict(button)

    def _reply_to(self, chat_id: int, params: Json) -> Json | None:
        reply = params.get("reply_parameters")
        message_id = (
            as_int(reply.get("message_id"))
            if isinstance(reply, dict)
            else as_int(params.get("reply_to_message_id"))
        )
        if message_id is None:
            return None
        if isinstance(reply, dict) and reply.get("chat_id") not in (None, chat_id):
            return None  # a reply in another chat: not modelled
        key = (chat_id, message_id)
        known = self.messages.get(key) or self._known_messages.get(key)
        return embedded(known) if known is not None else None

    def _send_message(self, params: Json) -> Json:
        chat_id = required_chat_id(params)
        self._check_can_send(chat_id)
        text, entities = formatted_text(params)
        markup = inline_markup(params.get("reply_markup"))
        message: Json = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user.as_dict(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        reply_to = self._reply_to(chat_id, params)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message["text"] = text
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        self.messages[(chat_id, message["message_id"])] = message
        for key in [key for key in self.drafts if key[0] == chat_id]:
            del self.drafts[key]
        return copy.deepcopy(message)

    def _edit_message_text(self, params: Json) -> Json | bool:
        text, entities = formatted_text(params)
        markup = inline_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        chat_id = required_chat_id(params)
        if params.get("message_id") in (None, ""):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        key = (chat_id, required_int(params, "message_id"))
        message = self.messages.get(key)
        if message is None:
            if key in self._incoming:
                raise ApiError(400, "Bad Request: message can't be edited")
            raise ApiError(400, "Bad Request: message to edit not found")
        current = (message.get("text"), message.get("entities", []), message.get("reply_markup"))
        if current == (text, entities, markup):
            raise ApiError(400, NOT_MODIFIED)
        message["text"] = text
        message.pop("entities", None)
        message.pop("reply_markup", None)
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _send_message_draft(self, params: Json) -> bool:
        chat_id = required_chat_id(params)
        draft_id = required_int(params, "draft_id")
        if draft_id == 0:
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        if chat_id < 0:
            raise ApiError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        self._check_can_send(chat_id)
        text, entities = formatted_text(params, allow_empty=True)
        self.drafts[(chat_id, draft_id)] = {"text": text, "entities": entities}
        return True

    def _send_chat_action(self, params: Json) -> bool:
        chat_id = required_chat_id(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self._check_can_send(chat_id)
        return True

    def _delete_message(self, params: Json) -> bool:
        key = (required_chat_id(params), required_int(params, "message_id"))
        if self.messages.pop(key, None) is None:
            if key not in self._incoming:
                raise ApiError(400, "Bad Request: message to delete not found")
            self._incoming.discard(key)
            self._known_messages.pop(key, None)
        return True

    def _answer_query(self, query_id: str) -> bool:
        if query_id in self._answered:
            raise ApiError(400, QUERY_TOO_OLD)
        self._answered.add(query_id)
        return True

    def _answer_callback_query(self, params: Json) -> bool:
        return self._answer_query(required_str(params, "callback_query_id"))

    def _answer_pre_checkout_query(self, params: Json) -> bool:
        query_id = required_str(params, "pre_checkout_query_id")
        if "ok" not in params:
            raise ApiError(400, "Bad Request: ok is empty")
        if not flag(params, "ok") and not params.get("error_message"):
            raise ApiError(400, "Bad Request: error_message is empty")
        return self._answer_query(query_id)

    def _create_invoice_link(self, params: Json) -> str:
        for name in ("title", "description", "payload", "currency"):
            required_str(params, name)
        prices = params.get("prices")
        if not isinstance(prices, list) or not prices:
            raise ApiError(400, "Bad Request: prices is empty")
        for price in prices:
            amount = as_int(price.get("amount")) if isinstance(price, dict) else None
            if amount is None or amount <= 0 or not price.get("label"):
                raise ApiError(400, "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID")
        stars = params["currency"] == "XTR"
        if stars and (
            len(prices) != 1 or params.get("provider_token") or params.get("max_tip_amount")
        ):
            raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
        link = f"https://t.me/${secrets.token_urlsafe(16)}"
        self.invoice_links[link] = dict(params)
        return link

    def _refund_star_payment(self, params: Json) -> bool:
        required_int(params, "user_id")
        charge_id = required_str(params, "telegram_payment_charge_id")
        if charge_id in self.refunded_charges:
            raise ApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        self.refunded_charges.add(charge_id)
        return True

    def _known_chat(self, params: Json) -> Json:
        chat_id = required_chat_id(params)
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return dict(chat)

    def _get_chat(self, params: Json) -> Json:
        return {
            **self._known_chat(params),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    def _member_of(self, chat_id: int, user_id: int) -> Json:
        creator, admins = self._admins.get(chat_id, (None, []))
        user = self._user(user_id)
        if user_id == creator:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in admins:
            return {"status": "administrator", "user": user, **ADMIN_RIGHTS}
        return {"status": "member", "user": user}

    def _get_chat_member(self, params: Json) -> Json:
        chat = self._known_chat(params)
        return self._member_of(int(chat["id"]), required_int(params, "user_id"))

    def _get_chat_administrators(self, params: Json) -> list[Json]:
        chat = self._known_chat(params)
        if chat["type"] == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        creator, admins = self._admins.get(int(chat["id"]), (None, []))
        ids = ([creator] if creator is not None else []) + admins
        return [self._member_of(int(chat["id"]), user_id) for user_id in ids]


def _commands_key(scope: Any, language_code: str) -> tuple[str, str]:
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


async def _wait_for_disconnect(receive: Receive, poll: _Poll) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    poll.wakeup.set()


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # a receive() that failed as the connection closed: nothing to do
