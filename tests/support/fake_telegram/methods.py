"""The Bot API methods the fake answers, each as Telegram does, on the state of the chats."""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.fake_telegram.entities import (
    formatted_text,
)
from tests.support.fake_telegram.state import TelegramState, commands_key
from tests.support.fake_telegram.updates import (
    ADMIN_RIGHTS,
    embedded,
)
from tests.support.fake_telegram.wire import (
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    ApiError,
    Json,
    as_int,
    flag,
    inline_markup,
    required_chat_id,
    required_int,
    required_str,
)


@dataclass
class Described:
    """A result with Telegram's optional description (setWebhook: "Webhook was set")."""

    result: Any
    description: str


_CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note"}
    | {"upload_video_note"}
)


class BotApiMethods(TelegramState):
    """Each Bot API method the fake answers, by the name Telegram gives it."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
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
            "sendVoice": self._send_voice,
            "sendPhoto": self._send_photo,
            "getFile": self._get_file,
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

    def _set_webhook(self, params: Json) -> Described:
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
        return Described(True, "Webhook was set")

    def _delete_webhook(self, params: Json) -> Described:
        if flag(params, "drop_pending_updates"):
            self._pending.clear()
        was_set, self.webhook = self.webhook is not None, None
        return Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

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
        key = commands_key(params.get("scope"), str(params.get("language_code") or ""))
        self._commands[key] = [dict(command) for command in commands]
        return True

    def _get_my_commands(self, params: Json) -> list[Json]:
        key = commands_key(params.get("scope"), str(params.get("language_code") or ""))
        return list(self._commands.get(key, []))

    def _delete_my_commands(self, params: Json) -> bool:
        key = commands_key(params.get("scope"), str(params.get("language_code") or ""))
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

    def _send_photo(self, params: Json) -> Json:
        """A photo uploaded as a multipart file, as the field itself or referenced as
        "attach://<field>" (a file_id or URL is not modelled)."""
        chat_id = required_chat_id(params)
        self._check_can_send(chat_id)
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = params.get(photo.removeprefix("attach://"))
        if not isinstance(photo, bytes) or not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        size = self.add_file(photo, "photos", "jpg")
        message: Json = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user.as_dict(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "photo": [{**size, "width": 1024, "height": 1024}],
        }
        reply_to = self._reply_to(chat_id, params)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if params.get("caption"):
            message["caption"] = str(params["caption"])
        self.messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _send_voice(self, params: Json) -> Json:
        """A voice note uploaded in Ogg/Opus as a multipart file, as the field itself or
        referenced as "attach://<field>", or a file_id Telegram holds (captions are not
        modelled)."""
        chat_id = required_chat_id(params)
        self._check_can_send(chat_id)
        voice = params.get("voice")
        if isinstance(voice, str) and voice.startswith("attach://"):
            voice = params.get(voice.removeprefix("attach://"))
        if isinstance(voice, bytes):
            if not voice.startswith(b"OggS") or b"OpusHead" not in voice[:512]:
                raise ApiError(400, "Bad Request: VOICE_MESSAGES_FORBIDDEN_OR_INVALID_FORMAT")
            sent = self.add_file(voice, "voice", "oga")
        elif isinstance(voice, str) and voice in self.files:
            _, data = self.files[voice]
            unique = voice.rsplit("-", 1)[-1]
            sent = {"file_id": voice, "file_unique_id": unique, "file_size": len(data)}
        else:
            raise ApiError(400, "Bad Request: there is no voice in the request")
        message: Json = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user.as_dict(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "voice": {
                **sent,
                "duration": as_int(params.get("duration")) or 0,
                "mime_type": "audio/ogg",
            },
        }
        reply_to = self._reply_to(chat_id, params)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _get_file(self, params: Json) -> Json:
        file_id = required_str(params, "file_id")
        known = self.files.get(file_id)
        if known is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = known
        unique = file_id.rsplit("-", 1)[-1]
        return {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": len(data),
            "file_path": path,
        }

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
