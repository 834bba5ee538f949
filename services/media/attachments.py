"""Media and messages: who may fetch an upload, and showing uploads in a message (the media
each message shows, as clients see it, is in services/views/media.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, NotFound, Unprocessable
from models import Chat, ChatMember, Media, MediaKind, Message, MessageMedia, MessageType, User

MAX_ALBUM_ITEMS = 10
# What one album may mix.
_ALBUM_GROUPS = (
    frozenset({MediaKind.PHOTO, MediaKind.VIDEO}),
    frozenset({MediaKind.AUDIO}),
    frozenset({MediaKind.DOCUMENT}),
)


def media_not_found() -> NotFound:
    return NotFound("Media not found", code="media_not_found")


async def get_media(session: AsyncSession, media_id: int) -> Media:
    media = await session.get(Media, media_id)
    if media is None:
        raise media_not_found()
    return media


async def get_media_for_download(session: AsyncSession, user_id: int, media_id: int) -> Media:
    """Media the user uploaded, or that a live message shows in an active chat they are in;
    404 otherwise, so that ids do not leak what exists."""
    media = await get_media(session, media_id)
    if media.uploader_id == user_id:
        return media
    shown_to_user = (
        select(MessageMedia.message_id)
        .join(
            Message,
            and_(Message.id == MessageMedia.message_id, Message.chat_id == MessageMedia.chat_id),
        )
        .join(Chat, Chat.id == Message.chat_id)
        .join(ChatMember, ChatMember.chat_id == Message.chat_id)
        .where(
            MessageMedia.media_id == media_id,
            Message.deleted_at.is_(None),
            Chat.is_active.is_(True),
            ChatMember.user_id == user_id,
        )
        .limit(1)
    )
    if (await session.scalars(shown_to_user)).first() is None:
        raise media_not_found()
    return media


async def attachable_media(
    session: AsyncSession, user: User, media_ids: Sequence[int]
) -> list[Media]:
    """The user's unsent uploads a new message is to show, in the given order, locked until the
    transaction ends (the message's insert shows them: see `services.messages`)."""
    if len(set(media_ids)) != len(media_ids):
        raise Unprocessable("media_ids lists an item twice", code="media_ids_duplicate")
    if len(media_ids) > MAX_ALBUM_ITEMS:
        raise Unprocessable(
            f"A message holds at most {MAX_ALBUM_ITEMS} media items", code="too_many_media"
        )
    found = {
        media.id: media
        for media in await session.scalars(
            select(Media)
            .where(Media.id.in_(media_ids), Media.uploader_id == user.id)
            .with_for_update()
        )
    }
    missing = [media_id for media_id in media_ids if media_id not in found]
    if missing:
        raise NotFound("Media not found", code="media_not_found", media_ids=missing)
    already_sent = (
        await session.scalars(
            select(MessageMedia.media_id).where(MessageMedia.media_id.in_(media_ids)).limit(1)
        )
    ).first()
    if already_sent is not None:
        raise Conflict(
            "This media item was already sent; upload the file again to send it again",
            code="media_already_attached",
            media_id=already_sent,
        )
    items = [found[media_id] for media_id in media_ids]
    kinds = {media.kind for media in items}
    if len(items) > 1 and not any(kinds <= group for group in _ALBUM_GROUPS):
        raise Unprocessable(
            "An album holds photos and videos, or only audio files, or only documents",
            code="album_mixed_media",
        )
    return items


def message_type_of(items: Sequence[Media]) -> MessageType:
    """The type of a message showing these: the kind of a single item, or album for several."""
    return MessageType.ALBUM if len(items) > 1 else MessageType(items[0].kind.value)
