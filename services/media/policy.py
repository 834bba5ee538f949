"""What may be uploaded, as what, and how often: file names, kinds, the rate and the quota."""

from __future__ import annotations

import os
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PayloadTooLarge, TooManyRequests, UnsupportedMediaType
from core.media_types import AUDIO_IN_VIDEO_CONTAINER, EXTENSIONS, MediaFamily, SniffedType
from models import Media, MediaKind
from models.base import utcnow
from services.media.config import MediaConfig

RATE_WINDOW = timedelta(minutes=1)
FILENAME_MAX_CHARS = 255

_FAMILY_OF_KIND = {
    MediaKind.PHOTO: MediaFamily.IMAGE,
    MediaKind.VIDEO: MediaFamily.VIDEO,
    MediaKind.AUDIO: MediaFamily.AUDIO,
    MediaKind.VOICE: MediaFamily.AUDIO,
}
_KIND_OF_FAMILY = {
    MediaFamily.IMAGE: MediaKind.PHOTO,
    MediaFamily.VIDEO: MediaKind.VIDEO,
    MediaFamily.AUDIO: MediaKind.AUDIO,
}
_ALLOWED = {
    MediaFamily.IMAGE: "a JPEG, PNG, WebP or GIF image",
    MediaFamily.VIDEO: "an MP4, WebM or QuickTime video",
    MediaFamily.AUDIO: "an Ogg/Opus, MP3, M4A, WAV or WebM audio file",
}


def clean_filename(raw: str | None) -> str | None:
    """The last path segment of a client's file name, without control characters."""
    if not raw:
        return None
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        return None
    if len(name) > FILENAME_MAX_CHARS:
        stem, extension = os.path.splitext(name)
        extension = extension if len(extension) <= 16 else ""
        name = stem[: FILENAME_MAX_CHARS - len(extension)] + extension
    return name


def download_filename(media: Media) -> str:
    """A document keeps its name; other kinds get the extension of their real type."""
    name = media.original_filename or f"{media.kind.value}-{media.id}"
    if media.kind is MediaKind.DOCUMENT:
        return name
    stem = os.path.splitext(name)[0] or media.kind.value
    return stem + EXTENSIONS.get(media.mime_type, "")


def resolve_kind(
    sniffed: SniffedType | None, declared: MediaKind | None
) -> tuple[MediaKind, SniffedType | None]:
    """The kind a file is stored as and its type: the declared kind if its content fits,
    else 415."""
    if declared is MediaKind.DOCUMENT:
        return declared, None
    if declared is None:
        return (_KIND_OF_FAMILY[sniffed.family] if sniffed else MediaKind.DOCUMENT), sniffed
    family = _FAMILY_OF_KIND[declared]
    if family is MediaFamily.AUDIO and sniffed in AUDIO_IN_VIDEO_CONTAINER:
        sniffed = AUDIO_IN_VIDEO_CONTAINER[sniffed]
    if sniffed is None or sniffed.family is not family:
        found = f"{sniffed.label} {sniffed.family.value}" if sniffed else "none of those"
        raise UnsupportedMediaType(
            f"A {declared.value} must be {_ALLOWED[family]}; this file's content is {found}. "
            "Send it as a document instead.",
            code="media_type_mismatch",
        )
    return declared, sniffed


async def check_upload_allowed(
    session: AsyncSession,
    uploader_id: int,
    config: MediaConfig,
    *,
    incoming_bytes: int = 0,
    now: datetime | None = None,
) -> None:
    """The per-user upload rate and storage quota (counted in the database, so across
    processes); called before an upload is read and again when it is stored."""
    since = (now or utcnow()) - RATE_WINDOW
    recent, used = (
        await session.execute(
            select(
                func.count(case((Media.created_at >= since, 1))),
                func.coalesce(func.sum(Media.size), 0),
            ).where(Media.uploader_id == uploader_id)
        )
    ).one()
    if recent >= config.uploads_per_minute:
        raise TooManyRequests(
            f"At most {config.uploads_per_minute} uploads a minute; try again shortly",
            code="upload_rate_limited",
        )
    if used + max(incoming_bytes, 1) > config.quota_bytes:
        raise PayloadTooLarge(
            "Your media storage quota is used up",
            code="media_quota_exceeded",
            quota_bytes=config.quota_bytes,
            used_bytes=used,
        )
