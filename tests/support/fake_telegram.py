"""A fake Telegram Bot API server: the methods our bot calls, in the real wire format
(`POST {base}/bot{token}/{method}` with form-data, urlencoded, JSON or query parameters;
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": ...}` with the
HTTP status of the error), served by a real uvicorn on a loopback port so that aiogram's `Bot`
talks to it unpatched through `AiohttpSession(api=TelegramAPIServer.from_base(base_url))`.

Every call is recorded. Tests push updates (the module's builders make them in the real
format) that getUpdates delivers as a long poll, plan failures (a 429 with retry_after, a 403,
...) and read the messages the bot sent, as edited. One server runs for the session; the
`fake_telegram` fixture gives each test a fresh FakeTelegram: its own calls, updates, plans
and chat state.

Deliberate simplifications, all lenient: ids the fake never saw (a callback query, a
pre-checkout query, a charge, a chat a message is sent to, a message replied to) are accepted,
since a test may feed an update straight to the Dispatcher; Markdown parse modes are not
parsed; entities are not detected in the bot's own texts. Strict where Telegram is: HTML
(ported from tdlib's parser, with its error texts), message length, empty texts, "message is
not modified", edits of unknown messages, double answers and refunds, getChat of unknown chats.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from tests.support.server import FakeServer
from tests.support.telegram import TEST_BOT_TOKEN

Json = dict[str, Any]
ChatType = Literal["private", "group", "supergroup", "channel"]

TOKEN_PATTERN = re.compile(r"\d+:[\w-]+")
MAX_TEXT_LENGTH = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# Both counters are shared by the builders and every FakeTelegram of the session, so ids only
# grow: a Dispatcher's offset never hides a later test's updates, and a message built for a
# chat never reuses an id the fake gave to one of the bot's messages (see _MessageIds).
_update_ids = itertools.count(1)
_query_ids = itertools.count(4_000_000_000_000_000_001)


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


_message_ids = _MessageIds()


# --- test users, chats and updates -----------------------------------------------------------


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


def utf16_length(text: str) -> int:
    """Telegram's entity offsets and lengths count UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


_MENTION = re.compile(r"(?<!\w)@[A-Za-z0-9_]{2,32}(?!\w)")
_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")
_LEADING_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


def _entity_at(text: str, start: int, end: int, type: str) -> Json:
    """An entity for text[start:end] (str indices), with offsets in UTF-16 code units."""
    offset = utf16_length(text[:start])
    return {"offset": offset, "length": utf16_length(text[start:end]), "type": type}


def mention_entities(text: str, username: str) -> list[Json]:
    """The `mention` entities Telegram finds for @username in a text."""
    wanted = username.removeprefix("@").lower()
    return [
        _entity_at(text, found.start(), found.end(), "mention")
        for found in _MENTION.finditer(text)
        if found.group()[1:].lower() == wanted
    ]


def command_entity(text: str) -> Json:
    """The `bot_command` entity of a text that starts with a command (/start, /help@bot)."""
    found = _LEADING_COMMAND.match(text)
    if found is None:
        raise ValueError(f"{text!r} does not start with a bot command")
    return _entity_at(text, 0, found.end(), "bot_command")


def detected_entities(text: str) -> list[Json]:
    """What Telegram detects in a user's text: mentions and bot commands."""
    entities = [_entity_at(text, m.start(), m.end(), "mention") for m in _MENTION.finditer(text)]
    entities += [
        _entity_at(text, m.start(), m.end(), "bot_command") for m in _BOT_COMMAND.finditer(text)
    ]
    return sorted(entities, key=lambda entity: entity["offset"])


def _snapshot(message: Json) -> Json:
    """A message as it appears inside another one (reply_to_message, callback_query.message)."""
    snapshot = copy.deepcopy(message)
    snapshot.pop("reply_to_message", None)
    return snapshot


def _message(chat: TgChat, user: TgUser | None, message_id: int | None, **fields: Any) -> Json:
    message: Json = {"message_id": message_id if message_id is not None else _message_ids.take()}
    _message_ids.seen(message["message_id"])
    if user is not None:
        message["from"] = user.as_dict()
    message["chat"] = chat.as_dict()
    message["date"] = int(time.time())
    message.update({name: value for name, value in fields.items() if value is not None})
    return message


def _update(kind: str, payload: Json) -> Json:
    return {"update_id": next(_update_ids), kind: payload}


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
            reply_to_message=_snapshot(reply_to) if reply_to is not None else None,
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


def _member(user: TgUser, status: str) -> Json:
    member: Json = {"status": status, "user": user.as_dict()}
    if status == "administrator":
        member.update(_ADMIN_RIGHTS)
    elif status == "creator":
        member["is_anonymous"] = False
    return member


_ADMIN_RIGHTS: Json = {
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
            "id": str(next(_query_ids)),
            "from": user.as_dict(),
            "message": _snapshot(message),
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
            "id": str(next(_query_ids)),
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


# --- Telegram's HTML parse mode (a port of tdlib's parse_html) --------------------------------


class HtmlError(ValueError):
    pass


_HTML_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler"}
    | {"tg-emoji", "span", "pre", "code", "blockquote"}
)
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}
_SPACES = frozenset(b" \t\r\n\v\f\0")
# tdlib's order of entities that start at the same offset and have the same length.
_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}
_HIDDEN_DATA = frozenset({"text_link", "text_mention", "custom_emoji"})


def _entity_order(entity: Json) -> tuple[int, int, int]:
    return (entity["offset"], -entity["length"], _PRIORITY.get(entity["type"], 50))


def _decode_html_entity(data: bytes, pos: int) -> tuple[int, int] | None:
    """(code point, position after it) of the character reference at data[pos] == '&'."""
    end = pos + 1
    code = 0
    if data[end] == ord("#"):
        end += 1
        if data[end] == ord("x"):
            end += 1
            while chr(data[end]) in "0123456789abcdefABCDEF":
                code = code * 16 + int(chr(data[end]), 16)
                end += 1
        else:
            while ord("0") <= data[end] <= ord("9"):
                code = code * 10 + data[end] - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(data[end]).isascii() and chr(data[end]).isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(data[pos + 1 : end])
        if named is None:
            return None
        code = ord(named)
    if data[end] == ord(";"):
        end += 1
    return code, end


@dataclass
class _OpenTag:
    name: str
    argument: str
    offset: int  # in UTF-16 code units of the parsed text
    start: int  # in bytes of the parsed text
    expandable: bool = False


def parse_html(html: str) -> tuple[str, list[Json]]:
    """The text and entities Telegram makes of an HTML-formatted text; HtmlError with
    Telegram's message (byte offsets in UTF-8) when it would refuse it."""
    size = len(html.encode("utf-8"))
    data = html.encode("utf-8", "surrogatepass") + b"\0"
    out = bytearray()
    entities: list[Json] = []
    stack: list[_OpenTag] = []
    utf16 = 0
    i = 0
    while i < size:
        c = data[i]
        if c == ord("&"):
            decoded = _decode_html_entity(data, i)
            if decoded is not None:
                code, i = decoded
                utf16 += 2 if code > 0xFFFF else 1
                out += chr(code).encode("utf-8", "surrogatepass")
                continue
        if c != ord("<"):
            if c & 0xC0 != 0x80:  # the first byte of a character
                utf16 += 2 if c >= 0xF0 else 1
            out.append(c)
            i += 1
            continue
        begin = i
        i += 1
        if data[i] != ord("/"):
            i = _start_tag(data, begin, stack, utf16, len(out))
        else:
            i = _end_tag(data, begin, stack, entities, out, utf16)
        i += 1
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        raise HtmlError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        ) from None
    return text, sorted(entities, key=_entity_order)


def _start_tag(data: bytes, begin: int, stack: list[_OpenTag], utf16: int, at: int) -> int:
    i = begin + 1
    while data[i] not in _SPACES and data[i] != ord(">"):
        i += 1
    if data[i] == 0:
        raise HtmlError(f"Unclosed start tag at byte offset {begin}")
    name = data[begin + 1 : i].decode("utf-8", "replace").lower()
    if name not in _HTML_TAGS:
        raise HtmlError(f'Unsupported start tag "{name}" at byte offset {begin}')
    argument = ""
    expandable = False
    while data[i] != ord(">"):
        while data[i] != 0 and data[i] in _SPACES:
            i += 1
        if data[i] == ord(">"):
            break
        attribute_begin = i
        while data[i] not in _SPACES and data[i] not in b"=>":
            i += 1
        attribute = data[attribute_begin:i].decode("utf-8", "replace")
        if not attribute:
            raise HtmlError(f'Empty attribute name in the tag "{name}" at byte offset {begin}')
        while data[i] != 0 and data[i] in _SPACES:
            i += 1
        if data[i] != ord("="):
            if name == "blockquote" and attribute == "expandable":
                expandable = True
                continue
            raise HtmlError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{name}" at byte offset {begin}'
            )
        i += 1
        while data[i] != 0 and data[i] in _SPACES:
            i += 1
        if data[i] == 0:
            raise HtmlError(f'Unclosed start tag "{name}" at byte offset {begin}')
        value, i = _attribute_value(data, i)
        if data[i] == 0:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if (name, attribute) in (("a", "href"), ("tg-emoji", "emoji-id")):
            argument = value
        elif name == "code" and attribute == "class" and value.startswith("language-"):
            argument = value.removeprefix("language-")
        elif name == "span" and attribute == "class" and value.startswith("tg-"):
            argument = value.removeprefix("tg-")
    if name == "span" and argument != "spoiler":
        raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    stack.append(_OpenTag(name, argument, utf16, at, expandable))
    return i


def _attribute_value(data: bytes, i: int) -> tuple[str, int]:
    if data[i] not in b"'\"":
        # A name token: letters, digits, periods or hyphens, not case sensitive.
        token_begin = i
        while chr(data[i]).isascii() and (chr(data[i]).isalnum() or data[i] in b".-"):
            i += 1
        if data[i] not in _SPACES and data[i] != ord(">"):
            raise HtmlError(f"Unexpected end of name token at byte offset {token_begin}")
        return data[token_begin:i].decode("ascii").lower(), i
    quote = data[i]
    i += 1
    value = bytearray()
    while data[i] != quote and data[i] != 0:
        if data[i] == ord("&"):
            decoded = _decode_html_entity(data, i)
            if decoded is not None:
                code, i = decoded
                value += chr(code).encode("utf-8", "surrogatepass")
                continue
        value.append(data[i])
        i += 1
    if data[i] == quote:
        i += 1
    return value.decode("utf-8", "replace"), i


def _end_tag(
    data: bytes,
    begin: int,
    stack: list[_OpenTag],
    entities: list[Json],
    out: bytearray,
    utf16: int,
) -> int:
    if not stack:
        raise HtmlError(f"Unexpected end tag at byte offset {begin}")
    i = begin + 1
    while data[i] not in _SPACES and data[i] != ord(">"):
        i += 1
    end_name = data[begin + 2 : i].decode("utf-8", "replace").lower()
    while data[i] != 0 and data[i] in _SPACES:
        i += 1
    if data[i] != ord(">"):
        raise HtmlError(f"Unclosed end tag at byte offset {begin}")
    tag = stack.pop()
    if end_name and end_name != tag.name:
        raise HtmlError(
            f'Unmatched end tag at byte offset {begin}, expected "</{tag.name}>", '
            f'found "</{end_name}>"'
        )
    if utf16 > tag.offset:
        entity = _html_entity(tag, entities, out, utf16 - tag.offset)
        if entity is not None:
            entities.append(entity)
    return i


def _html_entity(tag: _OpenTag, entities: list[Json], out: bytearray, length: int) -> Json | None:
    entity: Json = {"offset": tag.offset, "length": length}
    last = entities[-1] if entities else None
    same_span = last is not None and (last["offset"], last["length"]) == (tag.offset, length)
    if tag.name in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[tag.name]
    elif tag.name == "tg-emoji":
        if not tag.argument.isdigit() or int(tag.argument) == 0:
            raise HtmlError("Invalid custom emoji identifier specified")
        entity.update(type="custom_emoji", custom_emoji_id=tag.argument)
    elif tag.name == "a":
        url = tag.argument or out[tag.start :].decode("utf-8", "replace")
        user = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if user is not None:
            entity.update(
                type="text_mention",
                user={"id": int(user.group(1)), "is_bot": False, "first_name": ""},
            )
        elif not url.strip():
            return None
        else:
            entity.update(type="text_link", url=url)
    elif tag.name == "pre":
        if last is not None and same_span and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"
            return None
        entity["type"] = "pre"
    elif tag.name == "code":
        if last is not None and same_span and last["type"] == "pre" and tag.argument:
            last["language"] = tag.argument
            return None
        entity["type"] = "code"
        if tag.argument:
            entity["language"] = tag.argument  # dropped at the end unless a pre takes it
    else:  # blockquote
        entity["type"] = "expandable_blockquote" if tag.expandable else "blockquote"
    return entity


def _trim(text: str, entities: list[Json]) -> tuple[str, list[Json]]:
    """As Telegram stores a text: entities lose leading and whitespace-only spans, and the
    text loses trailing spaces and newlines, and leading ones before the first entity."""
    units = text.encode("utf-16-le")

    def blank(unit: int) -> bool:
        return units[2 * unit : 2 * unit + 2] in (b" \x00", b"\n\x00")

    kept: list[Json] = []
    for entity in entities:
        start, stop = int(entity["offset"]), int(entity["offset"]) + int(entity["length"])
        if entity["type"] not in _HIDDEN_DATA:
            while start < stop and blank(start):
                start += 1
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    right = text.rstrip(" \n")
    end = utf16_length(right)
    clipped = [
        {**entity, "length": min(entity["offset"] + entity["length"], end) - entity["offset"]}
        for entity in kept
        if entity["offset"] < end
    ]
    leading = len(right) - len(right.lstrip(" \n"))
    cut = min([leading, *(entity["offset"] for entity in clipped)])
    shifted = [{**entity, "offset": entity["offset"] - cut} for entity in clipped]
    return right[cut:], sorted(shifted, key=_entity_order)


# --- the fake ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedCall:
    method: str  # as Telegram names it (sendMessage), whatever case the client used
    params: dict[str, Any]  # form fields with their JSON values decoded
    at: float  # time.monotonic()
    token: str


class ApiError(Exception):
    """An error answer: {"ok": false, "error_code": code, "description": ..., "parameters"}."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters or {}


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
# Parameters that aiogram sends as plain strings (it JSON-encodes every other value); real
# Telegram knows each parameter's type, so a text "123" stays a string.
_STRING_PARAMS = frozenset(
    {"text", "parse_mode", "callback_query_id", "pre_checkout_query_id", "error_message"}
    | {"url", "secret_token", "ip_address", "title", "description", "payload", "currency"}
    | {"provider_token", "telegram_payment_charge_id", "action", "language_code"}
    | {"business_connection_id", "inline_message_id", "message_effect_id", "start_parameter"}
    | {"photo_url", "provider_data", "custom_emoji_id", "short_description", "name"}
)
_MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")
_BUTTON_ACTIONS = frozenset(
    {"url", "callback_data", "web_app", "login_url", "switch_inline_query", "pay"}
    | {"switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text"}
    | {"callback_game"}
)


def _chat_type(chat_id: int) -> ChatType:
    if chat_id > 0:
        return "private"
    return "supergroup" if chat_id <= -1_000_000_000_000 else "group"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _required_int(params: Json, name: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    number = _as_int(value)
    if number is None:
        raise ApiError(400, f"Bad Request: invalid {name} specified")
    return number


def _required_str(params: Json, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    return str(value)


def _chat_id(params: Json) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    chat_id = _as_int(value)
    if chat_id is None or chat_id == 0:  # "@channelusername": no such chat here
        raise ApiError(400, "Bad Request: chat not found")
    return chat_id


def _flag(params: Json, name: str) -> bool:
    return params.get(name) in (True, "true", "True", 1, "1")


def _inline_markup(markup: Any) -> Json | None:
    """The reply_markup a message shows (inline keyboards only), validated as Telegram does."""
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None  # reply keyboards and their removal are not part of the Message
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(
            400, 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
        )
    for row in rows:
        for button in row:
            _check_button(button)
    return markup if any(rows) else None


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(
            400,
            'Bad Request: can\'t parse inline keyboard button: Field "text" must be of type String',
        )
    if not _BUTTON_ACTIONS & button.keys():
        raise ApiError(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= 64:
        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    web_app = button.get("web_app")
    if isinstance(web_app, dict):
        url = str(web_app.get("url", ""))
        if not url.startswith("https://"):
            raise ApiError(
                400,
                f"Bad Request: inline keyboard button Web App URL '{url}' is invalid: "
                "Only HTTPS links are allowed",
            )


def formatted_text(params: Json, *, allow_empty: bool = False) -> tuple[str, list[Json]]:
    """The text and entities Telegram stores for text/parse_mode/entities parameters."""
    raw = params.get("text")
    text = "" if raw is None else str(raw)
    parse_mode = params.get("parse_mode")
    if parse_mode in (None, ""):
        given = params.get("entities") or []
        if not isinstance(given, list) or not all(isinstance(e, dict) for e in given):
            raise ApiError(400, "Bad Request: can't parse entities JSON object")
        entities = [dict(entity) for entity in given]
    elif str(parse_mode).lower() == "html":
        try:
            text, entities = parse_html(text)
        except HtmlError as error:
            raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
    elif str(parse_mode).lower() in ("markdown", "markdownv2"):
        entities = []  # not parsed by the fake: the text is kept as sent
    else:
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    text, entities = _trim(text, entities)
    if not text and not allow_empty:
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")
    return text, entities


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
        update = {**copy.deepcopy(update), "update_id": next(_update_ids)}
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
        self._chats.setdefault(chat_id, {"id": chat_id, "type": _chat_type(chat_id)})

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
        self._known_messages[(chat_id, message_id)] = _snapshot(message)
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
        return dict(self._chats.get(chat_id) or {"id": chat_id, "type": _chat_type(chat_id)})

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
        _message_ids.seen(message_id)
        return message_id

    # --- serving ---

    async def handle(self, request: Request, token: str, method: str) -> Response:
        try:
            params = await _read_params(request)
        except ApiError as error:
            return _error_response(error)
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
            return _error_response(error)
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
        offset = _as_int(params.get("offset")) or 0
        limit = min(max(_as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(_as_int(params.get("timeout")) or 0, 0)
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
        if _flag(params, "drop_pending_updates"):
            self._pending.clear()
        self.webhook = dict(params)
        self._wake_poll()
        return _Described(True, "Webhook was set")

    def _delete_webhook(self, params: Json) -> _Described:
        if _flag(params, "drop_pending_updates"):
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
                max_connections=_as_int(self.webhook.get("max_connections")) or 40,
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
        chat_id = _chat_id(params) if params.get("chat_id") not in (None, "") else None
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
        chat_id = _chat_id(params) if params.get("chat_id") not in (None, "") else None
        button = self.menu_buttons.get(chat_id)
        if (button is None or button["type"] == "default") and chat_id is not None:
            button = self.menu_buttons.get(None)
        if button is None or button["type"] == "default":
            return {"type": "commands"}
        return dict(button)

    def _reply_to(self, chat_id: int, params: Json) -> Json | None:
        reply = params.get("reply_parameters")
        message_id = (
            _as_int(reply.get("message_id"))
            if isinstance(reply, dict)
            else _as_int(params.get("reply_to_message_id"))
        )
        if message_id is None:
            return None
        if isinstance(reply, dict) and reply.get("chat_id") not in (None, chat_id):
            return None  # a reply in another chat: not modelled
        key = (chat_id, message_id)
        known = self.messages.get(key) or self._known_messages.get(key)
        return _snapshot(known) if known is not None else None

    def _send_message(self, params: Json) -> Json:
        chat_id = _chat_id(params)
        self._check_can_send(chat_id)
        text, entities = formatted_text(params)
        markup = _inline_markup(params.get("reply_markup"))
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
        markup = _inline_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        chat_id = _chat_id(params)
        if params.get("message_id") in (None, ""):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        key = (chat_id, _required_int(params, "message_id"))
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
        chat_id = _chat_id(params)
        draft_id = _required_int(params, "draft_id")
        if draft_id == 0:
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        if chat_id < 0:
            raise ApiError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        self._check_can_send(chat_id)
        text, entities = formatted_text(params, allow_empty=True)
        self.drafts[(chat_id, draft_id)] = {"text": text, "entities": entities}
        return True

    def _send_chat_action(self, params: Json) -> bool:
        chat_id = _chat_id(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self._check_can_send(chat_id)
        return True

    def _delete_message(self, params: Json) -> bool:
        key = (_chat_id(params), _required_int(params, "message_id"))
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
        return self._answer_query(_required_str(params, "callback_query_id"))

    def _answer_pre_checkout_query(self, params: Json) -> bool:
        query_id = _required_str(params, "pre_checkout_query_id")
        if "ok" not in params:
            raise ApiError(400, "Bad Request: ok is empty")
        if not _flag(params, "ok") and not params.get("error_message"):
            raise ApiError(400, "Bad Request: error_message is empty")
        return self._answer_query(query_id)

    def _create_invoice_link(self, params: Json) -> str:
        for name in ("title", "description", "payload", "currency"):
            _required_str(params, name)
        prices = params.get("prices")
        if not isinstance(prices, list) or not prices:
            raise ApiError(400, "Bad Request: prices is empty")
        for price in prices:
            amount = _as_int(price.get("amount")) if isinstance(price, dict) else None
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
        _required_int(params, "user_id")
        charge_id = _required_str(params, "telegram_payment_charge_id")
        if charge_id in self.refunded_charges:
            raise ApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        self.refunded_charges.add(charge_id)
        return True

    def _known_chat(self, params: Json) -> Json:
        chat_id = _chat_id(params)
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
            return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
        return {"status": "member", "user": user}

    def _get_chat_member(self, params: Json) -> Json:
        chat = self._known_chat(params)
        return self._member_of(int(chat["id"]), _required_int(params, "user_id"))

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


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def _read_params(request: Request) -> Json:
    """Query string and body parameters, as Telegram reads them (the body wins)."""
    params: Json = {key: _decode(key, value) for key, value in request.query_params.items()}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: can't parse JSON object")
        params.update(body)
    elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    params[key] = await value.read()
                else:
                    params[key] = _decode(key, value)
    return params


async def _wait_for_disconnect(receive: Receive, poll: _Poll) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    poll.wakeup.set()


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # a receive() that failed as the connection closed: nothing to do


def _error_response(error: ApiError) -> JSONResponse:
    body: Json = {"ok": False, "error_code": error.code, "description": error.description}
    if error.parameters:
        body["parameters"] = error.parameters
    return JSONResponse(body, status_code=error.code)


class FakeTelegramServer(FakeServer[FakeTelegram]):
    """The fake Bot API's server, answered by the current FakeTelegram (an idle one between
    tests)."""

    def __init__(self) -> None:
        super().__init__(FakeTelegram(""))
        methods = ["GET", "POST"]
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=methods),
                Route("/{path:path}", self._not_found, methods=methods),
            ]
        )

    async def _api(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not TOKEN_PATTERN.fullmatch(token):
            return _error_response(ApiError(401, "Unauthorized"))
        return await self.current.handle(request, token, request.path_params["method"])

    async def _not_found(self, request: Request) -> Response:
        return _error_response(ApiError(404, "Not Found"))

    def session(self, token: str = TEST_BOT_TOKEN) -> AbstractAsyncContextManager[FakeTelegram]:
        """A fresh FakeTelegram that takes the requests until the block ends."""
        return self.serving(FakeTelegram(self.base_url, token=token))

    def api(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.base_url)


@pytest.fixture(scope="session")
async def fake_telegram_server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer().running() as server:
        yield server


@pytest.fixture
async def fake_telegram(fake_telegram_server: FakeTelegramServer) -> AsyncIterator[FakeTelegram]:
    async with fake_telegram_server.session() as fake:
        yield fake


@pytest.fixture(scope="session")
async def fake_telegram_session(
    fake_telegram_server: FakeTelegramServer,
) -> AsyncIterator[AiohttpSession]:
    """One aiohttp session for the run (closing one costs aiogram's 0.25 s grace)."""
    session = AiohttpSession(api=fake_telegram_server.api())
    yield session
    await session.close()


@pytest.fixture
def fake_telegram_bot(fake_telegram: FakeTelegram, fake_telegram_session: AiohttpSession) -> Bot:
    """A real aiogram Bot (TEST_BOT_TOKEN) talking to this test's FakeTelegram. Start polling
    with close_bot_session=False: the session is shared."""
    return Bot(fake_telegram.token, session=fake_telegram_session)
