"""Media items as clients see them: with signed URLs, and in Aeon's single-media fields."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.signing import MediaUrls
from core.sql import in_ids
from models import Media, MediaKind, MessageMedia, MessageType
from services.media.policy import download_filename


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


class AeonUploadedMedia(BaseModel):
    """Aeon's `upload-media` answer, plus the media id a message is sent with."""

    media_url: str
    media_type: str
    media_size: int
    message_type: MediaKind
    filename: str
    media_id: int
    media_duration: float | None
    width: int | None
    height: int | None
    thumbnail_url: str | None

    @classmethod
    def of(cls, view: MediaView) -> AeonUploadedMedia:
        return cls(
            media_url=view.url,
            media_type=view.mime_type,
            media_size=view.size,
            message_type=view.kind,
            filename=view.filename,
            media_id=view.id,
            media_duration=view.duration,
            width=view.width,
            height=view.height,
            thumbnail_url=view.thumbnail_url,
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


# Built once: the views of every message list ask it.
_MEDIA_OF_MESSAGES = (
    select(MessageMedia.message_id, Media)
    .join(Media, Media.id == MessageMedia.media_id)
    .where(in_ids(MessageMedia.message_id, "ids"))
    .order_by(MessageMedia.message_id, MessageMedia.position)
)


class MessageWithMedia(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def type(self) -> MessageType: ...
    @property
    def deleted_at(self) -> datetime | None: ...


async def media_fields(
    session: AsyncSession, messages: Sequence[MessageWithMedia], urls: MediaUrls
) -> dict[int, list[MediaView]]:
    """Media of each message (deleted messages show none), in album order; one query, none
    when no message carries media (a text message carries none: media make a message's type)."""
    message_ids = [
        message.id
        for message in messages
        if message.deleted_at is None and message.type is not MessageType.TEXT
    ]
    if not message_ids:
        return {}
    views: dict[int, list[MediaView]] = defaultdict(list)
    for message_id, media in await session.execute(_MEDIA_OF_MESSAGES, {"ids": message_ids}):
        views[message_id].append(MediaView.of(media, urls))
    return dict(views)


def media_url_version(session: AsyncSession) -> str:
    """What the media URLs in this session's message views depend on besides the media: a
    view built now and one built later are the same only if this is. The session's URLs are
    pinned to this moment, so the views it builds next carry the expiry named here."""
    urls: MediaUrls | None = session.info.get("media_urls")
    if urls is None:
        return ""
    session.info["media_urls"] = urls = urls.pinned()
    return f"{urls.base_url}|{urls.expiry}"
