"""What Telegram finds in a text: offsets in UTF-16 units, mentions and commands it detects in
a user's text, and its HTML parse mode (a port of tdlib's parse_html) for the bot's texts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.fake_telegram.wire import (
    MAX_TEXT_LENGTH,
    ApiError,
    Json,
)


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


_ENTITY_TYPES = frozenset(_PRIORITY) | {
    "mention",
    "hashtag",
    "cashtag",
    "bot_command",
    "url",
    "email",
    "phone_number",
}


def _given_entity(text: str, entity: Json) -> Json:
    """An entity of the `entities` parameter, checked as the Bot API reads it. Telegram quietly
    drops or clips an entity outside the text or inside a character; the fake refuses it, so
    that a test sees the sender's offsets are wrong rather than a silently plainer message."""

    def refuse(reason: str) -> ApiError:
        return ApiError(400, f"Bad Request: can't parse entities: {reason}")

    offset, length, kind = entity.get("offset"), entity.get("length"), entity.get("type")
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise refuse('Field "offset" must be of type Number')
    if not isinstance(length, int) or isinstance(length, bool):
        raise refuse('Field "length" must be of type Number')
    if not isinstance(kind, str):
        raise refuse('Field "type" must be of type String')
    if kind not in _ENTITY_TYPES:
        raise refuse("Unsupported type specified")
    if kind == "text_link" and not isinstance(entity.get("url"), str):
        raise refuse('Field "url" must be of type String')
    if kind == "pre" and not isinstance(entity.get("language", ""), str):
        raise refuse('Field "language" must be of type String')
    units = text.encode("utf-16-le", "surrogatepass")
    if offset < 0 or length <= 0 or 2 * (offset + length) > len(units):
        raise refuse(f"entity {offset}+{length} is outside the text of {len(units) // 2} units")
    for edge in (offset, offset + length):
        if 0 < edge < len(units) // 2 and 0xDC00 <= _unit(units, edge) <= 0xDFFF:
            raise refuse(f"entity {offset}+{length} splits a character")
    return entity


def _unit(units: bytes, index: int) -> int:
    return int.from_bytes(units[2 * index : 2 * index + 2], "little")


def formatted_text(params: Json, *, allow_empty: bool = False) -> tuple[str, list[Json]]:
    """The text and entities Telegram stores for text/parse_mode/entities parameters."""
    raw = params.get("text")
    text = "" if raw is None else str(raw)
    parse_mode = params.get("parse_mode")
    if parse_mode in (None, ""):
        given = params.get("entities") or []
        if not isinstance(given, list) or not all(isinstance(e, dict) for e in given):
            raise ApiError(400, "Bad Request: can't parse entities JSON object")
        entities = [_given_entity(text, dict(entity)) for entity in given]
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
    if utf16_length(text) > MAX_TEXT_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")
    return text, entities
