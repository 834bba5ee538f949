"""The tests' Telegram users and chats, and the updates they make, in the real format."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass
from typing import Any, Literal

from tests.support.fake_telegram.entities import (
    detected_entities,
)
from tests.support.fake_telegram.wire import (
    ChatType,
    Json,
)

# Both counters are shared by the builders and every FakeTelegram of the session, so ids only
# grow: a Dispatcher's offset never hides a later test's updates, and a message built for a
# chat never reuses an id the fake gave to one of the bot's messages (see _MessageIds).
update_ids = itertools.count(1)
query_ids = itertools.count(4_000_000_000_000_000_001)


class _MessageIds:
    """Ids for messages built by the tests; FakeTelegram reports the ids it assigns, so these
    stay above them. As in real private chats and basic groups, a chat sees increasing ids with
    gaps."""

    def __init__(self) -> None:
        self.last = 0

    def take(self) -> int:
        self.last += 1
        return self.last

    def seen(self, message_id: int) -> None:
        self.last = max(self.last, message_id)


message_ids = _MessageIds()


@dataclass(frozen=True, slots=True)
class TgUser:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    language_code: str | None = "en"

    def as_dict(self) -> Json:
        user: Json = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name is not None:
            user["last_name"] = self.last_name
        if self.username is not None:
            user["username"] = self.username
        if self.language_code is not None and not self.is_bot:
            user["language_code"] = self.language_code
        return user


@dataclass(frozen=True, slots=True)
class TgChat:
    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def as_dict(self) -> Json:
        chat: Json = {"id": self.id, "type": self.type}
        for name in ("title", "username", "first_name", "last_name"):
            value = getattr(self, name)
            if value is not None:
                chat[name] = value
        return chat


def tg_user(
    id: int,
    first_name: str,
    username: str | None = None,
    *,
    last_name: str | None = None,
    language_code: str | None = "en",
) -> TgUser:
    return TgUser(id, first_name, username, last_name, language_code=language_code)


def tg_private_chat(user: TgUser) -> TgChat:
    return TgChat(
        user.id,
        "private",
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
    )


def tg_group(id: int, title: str, type: Literal["group", "supergroup"] = "group") -> TgChat:
    """A basic group has a small negative id (-4012345678); a supergroup's starts with -100."""
    return TgChat(id, type, title=title)


def embedded(message: Json) -> Json:
    """A message as it appears inside another one (reply_to_message, callback_query.message)."""
    snapshot = copy.deepcopy(message)
    snapshot.pop("reply_to_message", None)
    return snapshot


def _message(chat: TgChat, user: TgUser | None, message_id: int | None, **fields: Any) -> Json:
    message: Json = {"message_id": message_id if message_id is not None else message_ids.take()}
    message_ids.seen(message["message_id"])
    if user is not None:
        message["from"] = user.as_dict()
    message["chat"] = chat.as_dict()
    message["date"] = int(time.time())
    message.update({name: value for name, value in fields.items() if value is not None})
    return message


def _update(kind: str, payload: Json) -> Json:
    return {"update_id": next(update_ids), kind: payload}


def _text_message(
    chat: TgChat,
    user: TgUser,
    text: str,
    message_id: int | None,
    reply_to: Json | None,
    entities: list[Json] | None,
) -> Json:
    found = detected_entities(text) if entities is None else entities
    return _update(
        "message",
        _message(
            chat,
            user,
            message_id,
            reply_to_message=embedded(reply_to) if reply_to is not None else None,
            text=text,
            entities=found or None,
        ),
    )


def private_text(
    user: TgUser,
    text: str,
    *,
    message_id: int | None = None,
    reply_to: Json | None = None,
    entities: list[Json] | None = None,
) -> Json:
    """A user's text message to the bot. Without `entities`, the mentions and bot commands in
    the text get theirs, as Telegram detects them; pass [] for none."""
    return _text_message(tg_private_chat(user), user, text, message_id, reply_to, entities)


def private_photo(
    user: TgUser, photo: Json, *, width: int, height: int, caption: str | None = None
) -> Json:
    """A user's photo to the bot: `photo` is the file (FakeTelegram.add_file), offered in one
    size, as a small photo is."""
    sizes = [{**photo, "width": width, "height": height}]
    chat = tg_private_chat(user)
    return _update("message", _message(chat, user, None, photo=sizes, caption=caption))


def private_document(
    user: TgUser, document: Json, *, file_name: str, mime_type: str, caption: str | None = None
) -> Json:
    """A user's file to the bot, sent as a document (`document`: FakeTelegram.add_file)."""
    sent = {**document, "file_name": file_name, "mime_type": mime_type}
    chat = tg_private_chat(user)
    return _update("message", _message(chat, user, None, document=sent, caption=caption))


def group_text(
    chat: TgChat,
    user: TgUser,
    text: str,
    *,
    entities: list[Json] | None = None,
    reply_to: Json | None = None,
    message_id: int | None = None,
) -> Json:
    """A user's text message in a group (entities as in private_text)."""
    return _text_message(chat, user, text, message_id, reply_to, entities)


SoundKind = Literal["voice", "audio", "video_note"]
_SOUND_FIELDS: dict[str, Json] = {
    "voice": {"mime_type": "audio/ogg"},
    "audio": {"mime_type": "audio/mpeg", "file_name": "song.mp3"},
    "video_note": {"length": 240},
}


def sound_message(
    chat: TgChat,
    user: TgUser,
    kind: SoundKind,
    file: Json,
    *,
    duration: int,
    reply_to: Json | None = None,
) -> Json:
    """A voice note, an audio file or a round video note, in private or in a group; `file` is
    what FakeTelegram.add_file made of its bytes."""
    sound = {**file, "duration": duration, **_SOUND_FIELDS[kind]}
    return _update(
        "message",
        _message(
            chat,
            user,
            None,
            reply_to_message=embedded(reply_to) if reply_to is not None else None,
            **{kind: sound},
        ),
    )


def _member(user: TgUser, status: str) -> Json:
    member: Json = {"status": status, "user": user.as_dict()}
    if status == "administrator":
        member.update(ADMIN_RIGHTS)
    elif status == "creator":
        member["is_anonymous"] = False
    return member


ADMIN_RIGHTS: Json = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_send_welcome_messages": False,
    "can_pin_messages": True,
    "can_manage_topics": False,
}


def bot_added_to_group(
    chat: TgChat, by_user: TgUser, bot: TgUser, *, as_admin: bool = False
) -> Json:
    """The my_chat_member update the bot gets when someone adds it to a group."""
    return _update(
        "my_chat_member",
        {
            "chat": chat.as_dict(),
            "from": by_user.as_dict(),
            "date": int(time.time()),
            "old_chat_member": _member(bot, "left"),
            "new_chat_member": _member(bot, "administrator" if as_admin else "member"),
        },
    )


def group_migrated(old_chat: TgChat, new_chat_id: int, *, by_user: TgUser | None = None) -> Json:
    """The service message in a basic group that was upgraded to a supergroup."""
    return _update("message", _message(old_chat, by_user, None, migrate_to_chat_id=new_chat_id))


def _chat_instance(chat_id: int) -> str:
    return str((chat_id * 2_654_435_761) % 2**63)


def callback_query(user: TgUser, data: str, message: Json) -> Json:
    """A press of an inline button under `message` (one of FakeTelegram.messages)."""
    return _update(
        "callback_query",
        {
            "id": str(next(query_ids)),
            "from": user.as_dict(),
            "message": embedded(message),
            "chat_instance": _chat_instance(int(message["chat"]["id"])),
            "data": data,
        },
    )


def pre_checkout_query(
    user: TgUser, payload: str, total_amount: int, currency: str = "XTR"
) -> Json:
    return _update(
        "pre_checkout_query",
        {
            "id": str(next(query_ids)),
            "from": user.as_dict(),
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
        },
    )


def successful_payment(user: TgUser, payload: str, total_amount: int, charge_id: str) -> Json:
    """The service message of a paid invoice, in the user's private chat with the bot."""
    payment = {
        "currency": "XTR",
        "total_amount": total_amount,
        "invoice_payload": payload,
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    }
    return _update(
        "message", _message(tg_private_chat(user), user, None, successful_payment=payment)
    )


def stopped_message_generation(user: TgUser, draft_id: int) -> Json:
    """The user pressed the stop button of a draft sent with can_stop."""
    return _update(
        "stopped_message_generation",
        {"chat": tg_private_chat(user).as_dict(), "draft_id": draft_id},
    )
