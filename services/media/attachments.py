"""Media and messages: who may fetch an upload, showing uploads in a message, and the media
each message shows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, NotFound, Unprocessable
from core.signing import MediaUrls
from models import Chat, ChatMember, Media, MediaKind, Message, MessageMedia, MessageType, User
from services.media.policy import download_filename

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
        .join(Message, Message.id == MessageMedia.message_id)
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


async def attach_media(
    session: AsyncSession, user: User, message_id: int, media_ids: Sequence[int]
) -> MessageType:
    """Shows the user's unsent uploads in a message, in the given order; returns the message's
    type: the kind of a single item, or album for several."""
    if not media_ids:
        raise Unprocessable("media_ids is empty", code="media_ids_empty")
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
    session.add_all(
        MessageMedia(message_id=message_id, media_id=media.id, position=position)
        for position, media in enumerate(items)
    )
    await session.flush()
    return MessageType.ALBUM if len(items) > 1 else MessageType(items[0].kind.value)


async def copy_attachments(
    session: AsyncSession, source_message_id: int, target_message_id: int
) -> None:
    """The media of a forwarded message, shown in its copy too."""
    await session.execute(
        insert(MessageMedia).from_select(
            ["message_id", "media_id", "position"],
            select(
                literal(target_message_id, BigInteger), MessageMedia.media_id, MessageMedia.position
            ).where(MessageMedia.message_id == source_message_id),
        )
    )


class MediaView(BaseModel):
    id: int
    kind: MediaKind
    mime_type: str
    size: int
    width: int | None
    height: int | None
    duration: float | None
    url: str
    thumbnail_url: str | None
    filename: str

    @classmethod
    def of(cls, media: Media, urls: MediaUrls) -> MediaView:
        return cls(
            id=media.id,
            kind=media.kind,
            mime_type=media.mime_type,
            size=media.size,
            width=media.width,
            height=media.height,
            duration=media.duration,
            url=urls.media(media.id),
            thumbnail_url=urls.thumbnail(media.id) if media.thumbnail_key else None,
            filename=download_filename(media),
        )


def aeon_media_fields(items: Sequence[MediaView]) -> dict[str, Any]:
    """Aeon's single-media message fields, from a message's first media item."""
    first = items[0] if items else None
    duration = first.duration if first else None
    return {
        "media_url": first.url if first else None,
        "media_type": first.mime_type if first else None,
        "media_size": first.size if first else None,
        # Aeon's is whole seconds (half up); the exact duration is in `media`.
        "media_duration": int(duration + 0.5) if duration is not None else None,
    }


async def media_fields(
    session: AsyncSession, messages: Sequence[Message], urls: MediaUrls
) -> dict[int, list[MediaView]]:
    """Media of each message (deleted messages show none), in album order; one query."""
    message_ids = [message.id for message in messages if message.deleted_at is None]
    if not message_ids:
        return {}
    rows = await session.execute(
        select(MessageMedia.message_id, Media)
        .join(Media, Media.id == MessageMedia.media_id)
        .where(MessageMedia.message_id.in_(message_ids))
        .order_by(MessageMedia.message_id, MessageMedia.position)
    )
    views: dict[int, list[MediaView]] = defaultdict(list)
    for message_id, media in rows:
        views[message_id].append(MediaView.of(media, urls))
    return dict(views)
