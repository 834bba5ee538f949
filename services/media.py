"""Media: uploads streamed to storage, who may fetch them, attachment to messages, cleanup.

An upload is spooled to a local file while it is counted and hashed (never held in memory),
typed from its bytes, probed in a worker thread, then stored under its content hash, so that
identical files are stored once. Rows are per upload; a stored file goes when its last row goes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import unicodedata
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel
from sqlalchemy import BigInteger, case, delete, exists, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import unit_of_work
from core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unprocessable,
    UnsupportedMediaType,
)
from core.media_probe import MediaProbe, probe
from core.media_types import (
    AUDIO_IN_VIDEO_CONTAINER,
    EXTENSIONS,
    HEAD_BYTES,
    OCTET_STREAM,
    MediaFamily,
    SniffedType,
    sniff,
)
from core.settings import Settings
from core.signing import MediaUrlSigner, media_path
from core.storage import Storage, blob_key, sync_file, thumbnail_key
from models import Chat, ChatMember, Media, MediaKind, Message, MessageMedia, MessageType, User
from models.base import utcnow

logger = logging.getLogger(__name__)

UNATTACHED_MAX_AGE = timedelta(days=1)
RATE_WINDOW = timedelta(minutes=1)
MAX_ALBUM_ITEMS = 10
CLEANUP_BATCH = 200
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
# A decoded image may take MAX_IMAGE_PIXELS * 4 bytes: bound how many are decoded at once.
_PROBE_SLOTS = asyncio.Semaphore(2)
# What one album may mix.
_ALBUM_GROUPS = (
    frozenset({MediaKind.PHOTO, MediaKind.VIDEO}),
    frozenset({MediaKind.AUDIO}),
    frozenset({MediaKind.DOCUMENT}),
)


@dataclass(frozen=True, slots=True)
class MediaConfig:
    spool_dir: Path
    max_upload_bytes: int
    quota_bytes: int
    uploads_per_minute: int

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaConfig:
        return cls(
            # Inside the storage root, so that a spooled file is renamed into place.
            spool_dir=settings.media_dir / ".incoming",
            max_upload_bytes=settings.max_upload_bytes,
            quota_bytes=settings.media_quota_bytes,
            uploads_per_minute=settings.media_uploads_per_minute,
        )


@dataclass(frozen=True, slots=True)
class SpooledUpload:
    path: Path
    size: int
    sha256: str
    head: bytes

    async def discard(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)


@dataclass(frozen=True, slots=True)
class MediaUrls:
    """Signed, absolute URLs (relative when no base URL is known)."""

    signer: MediaUrlSigner
    base_url: str

    def _signed(self, path: str) -> str:
        expires, signature = self.signer.sign(path)
        return f"{self.base_url}{path}?exp={expires}&sig={signature}"

    def media(self, media_id: int) -> str:
        return self._signed(media_path(media_id))

    def thumbnail(self, media_id: int) -> str:
        return self._signed(media_path(media_id, thumbnail=True))


def media_urls(settings: Settings, secret_key: str, base_url: str | None = None) -> MediaUrls:
    """URLs under PUBLIC_BASE_URL, else under `base_url` (the request's; a WebSocket's works)."""
    base = settings.public_base_url or (base_url or "").rstrip("/")
    for socket_scheme, http_scheme in (("ws://", "http://"), ("wss://", "https://")):
        if base.startswith(socket_scheme):
            base = http_scheme + base[len(socket_scheme) :]
    return MediaUrls(MediaUrlSigner(secret_key, settings.media_url_ttl), base)


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


async def spool_upload(chunks: AsyncIterable[bytes], config: MediaConfig) -> SpooledUpload:
    """Writes the stream to a local file while counting and hashing it; past
    `max_upload_bytes` it stops with 413 and removes what it wrote."""
    file, path = await asyncio.to_thread(_open_spool_file, config.spool_dir)
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    try:
        with file:
            async for chunk in chunks:
                size += len(chunk)
                if size > config.max_upload_bytes:
                    raise PayloadTooLarge(
                        f"The file is larger than {config.max_upload_bytes} bytes",
                        code="file_too_large",
                        max_bytes=config.max_upload_bytes,
                    )
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                await asyncio.to_thread(_write_and_hash, file.write, digest.update, chunk)
            await asyncio.to_thread(sync_file, file)
        if size == 0:
            raise Unprocessable("The file is empty", code="file_empty")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledUpload(path=path, size=size, sha256=digest.hexdigest(), head=bytes(head))


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


async def store_upload(
    session: AsyncSession,
    storage: Storage,
    config: MediaConfig,
    uploader_id: int,
    upload: SpooledUpload,
    *,
    declared_kind: MediaKind | None = None,
    filename: str | None = None,
) -> Media:
    """Types, probes and stores a spooled upload (consuming it) and adds its row."""
    try:
        kind, sniffed = resolve_kind(sniff(upload.head), declared_kind)
        metadata, mime_type = MediaProbe(), OCTET_STREAM
        if sniffed is not None:
            async with _PROBE_SLOTS:
                metadata = await asyncio.to_thread(probe, upload.path, sniffed)
            mime_type = sniffed.mime_type
        # One user's concurrent uploads queue here, so that each sees the others in the checks.
        await session.execute(select(User.id).where(User.id == uploader_id).with_for_update())
        await check_upload_allowed(session, uploader_id, config, incoming_bytes=upload.size)
        await _lock_content(session, upload.sha256)
        key = blob_key(upload.sha256)
        if not await storage.exists(key):
            await storage.put_file(key, upload.path)
        thumbnail = None
        if metadata.thumbnail is not None:
            thumbnail = thumbnail_key(upload.sha256)
            if not await storage.exists(thumbnail):
                await storage.write(thumbnail, _single_chunk(metadata.thumbnail))
        media = Media(
            uploader_id=uploader_id,
            kind=kind,
            mime_type=mime_type,
            size=upload.size,
            sha256=upload.sha256,
            original_filename=clean_filename(filename),
            width=metadata.width,
            height=metadata.height,
            duration=metadata.duration,
            thumbnail_key=thumbnail,
        )
        session.add(media)
        await session.flush()
        return media
    finally:
        await upload.discard()


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


async def cleanup_unattached(
    session: AsyncSession, storage: Storage, *, older_than: datetime, limit: int = CLEANUP_BATCH
) -> int:
    """Deletes up to `limit` media created before `older_than` that no message shows, and the
    stored files no remaining row shares; returns how many rows went."""
    unattached = ~exists().where(MessageMedia.media_id == Media.id)
    candidates = list(
        await session.scalars(
            select(Media.id)
            .where(Media.created_at < older_than, unattached)
            .order_by(Media.id)
            .limit(limit)
        )
    )
    if not candidates:
        return 0
    deleted = (
        await session.execute(
            delete(Media)
            .where(Media.id.in_(candidates), unattached)
            .returning(Media.sha256)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for sha256 in sorted({row.sha256 for row in deleted}):
        await _lock_content(session, sha256)
        shared = select(Media.id).where(Media.sha256 == sha256).limit(1)
        if (await session.scalars(shared)).first() is None:
            await storage.delete(blob_key(sha256))
            await storage.delete(thumbnail_key(sha256))
    return len(deleted)


async def run_media_cleanup(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker,
    storage: Storage,
    *,
    max_age: timedelta = UNATTACHED_MAX_AGE,
    spool_dir: Path | None = None,
    now: datetime | None = None,
) -> int:
    """One cleanup pass, a unit of work per batch; also removes stale spool files."""
    cutoff = (now or utcnow()) - max_age
    total = 0
    while True:
        async with unit_of_work(sessionmaker, broker) as session:
            removed = await cleanup_unattached(session, storage, older_than=cutoff)
        total += removed
        if removed < CLEANUP_BATCH:
            break
    if spool_dir is not None:
        await asyncio.to_thread(_sweep_spool, spool_dir, cutoff.timestamp())
    if total:
        logger.info("media cleanup removed %d unattached uploads", total)
    return total


async def run_media_cleanup_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker,
    storage: Storage,
    *,
    interval: float = 3600.0,
    max_age: timedelta = UNATTACHED_MAX_AGE,
    spool_dir: Path | None = None,
) -> None:
    """The periodic cleanup, for a background task (cancel it to stop)."""
    while True:
        try:
            await run_media_cleanup(
                sessionmaker, broker, storage, max_age=max_age, spool_dir=spool_dir
            )
        except Exception:
            logger.exception("media cleanup failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)


async def _lock_content(session: AsyncSession, sha256: str) -> None:
    """Serializes storing and deleting the file of one hash. SQLite transactions already hold
    the database's write lock; PostgreSQL takes a transaction-scoped advisory lock."""
    if session.get_bind().dialect.name == "postgresql":
        lock_id = int.from_bytes(bytes.fromhex(sha256[:16]), signed=True)
        await session.execute(select(func.pg_advisory_xact_lock(lock_id)))


async def _single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _open_spool_file(directory: Path) -> tuple[BinaryIO, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
    return os.fdopen(fd, "wb"), Path(name)


def _write_and_hash(
    write: Callable[[bytes], object], update: Callable[[bytes], None], chunk: bytes
) -> None:
    update(chunk)
    write(chunk)


def _sweep_spool(directory: Path, cutoff: float) -> None:
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name.startswith("upload-") and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
