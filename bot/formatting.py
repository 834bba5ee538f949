"""Model output (Markdown) as Telegram text with entities (telegramify-markdown).

Entities are sent as a list beside plain text, never as parse_mode markup: there is nothing for
Telegram to parse, so nothing it can refuse. Only the entity types and link schemes Telegram
takes from a bot are kept; any other mark leaves its text plain.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from aiogram.types import MessageEntity
from telegramify_markdown import MessageEntity as RenderedEntity
from telegramify_markdown import RenderConfig, convert, split_entities

TELEGRAM_TEXT_LIMIT = 4096  # UTF-16 code units, as Telegram counts them

_KEPT_TYPES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "blockquote",
        "expandable_blockquote",
    }
)
_LINK_SCHEMES = frozenset({"http", "https", "tg"})
# Our own settings: the library's default config is a process-wide mutable object.
_CONFIG = RenderConfig.isolated()


@dataclass(frozen=True, slots=True)
class TelegramText:
    """One message's text and its entities (offsets in UTF-16 code units)."""

    text: str
    entities: tuple[MessageEntity, ...]


def _kept(entity: RenderedEntity) -> bool:
    if entity.type not in _KEPT_TYPES:
        return False
    if entity.type == "text_link":
        return entity.url is not None and urlsplit(entity.url).scheme.lower() in _LINK_SCHEMES
    return True


def format_markdown(markdown: str) -> list[TelegramText]:
    """The messages that show `markdown`: split at newlines where possible to fit Telegram's
    limit; an entity across a cut is closed at its end and reopened in the next message."""
    text, entities = convert(markdown, config=_CONFIG)
    kept = [entity for entity in entities if _kept(entity)]
    return [
        TelegramText(
            part,
            tuple(
                MessageEntity(
                    type=entity.type,
                    offset=entity.offset,
                    length=entity.length,
                    url=entity.url,
                    language=entity.language,
                )
                for entity in part_entities
            ),
        )
        for part, part_entities in split_entities(text, kept, TELEGRAM_TEXT_LIMIT)
    ]
