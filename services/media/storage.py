"""Receiving an upload: spooled to a local file while it is counted and hashed (never held in
memory), typed from its bytes, probed in a worker thread, then stored under its content hash, so
that identical files are stored once. Rows are per upload; a stored file goes when its last row
goes (see services.media.cleanup).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PayloadTooLarge, Unprocessable
from core.media_probe import MediaProbe, probe
from core.media_types import HEAD_BYTES, OCTET_STREAM, sniff
from core.storage import Storage, blob_key, sync_file, thumbnail_key
from models import Media, MediaKind, User
from services.media.config import MediaConfig
from services.media.policy import check_upload_allowed, clean_filename, resolve_kind

# A decoded image may take MAX_IMAGE_PIXELS * 4 bytes: bound how many are decoded at once.
_PROBE_SLOTS = asyncio.Semaphore(2)


@dataclass(frozen=True, slots=True)
class SpooledUpload:
    path: Path
    size: int
    sha256: str
    head: bytes

    async def discard(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)


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


async def store_upload(
    session: AsyncSession,
    storage: Storage,
    config: MediaConfig,
    uploader_id: int,
    upload: SpooledUpload,
    *,
    declared_kind: MediaKind | None = None,
    filename: str | None = None,
    limited: bool = True,
) -> Media:
    """Types, probes and stores a spooled upload (consuming it) and adds its row. `limited`:
    the uploader's upload rate and storage quota apply (not to what the AI makes)."""
    try:
        kind, sniffed = resolve_kind(sniff(upload.head), declared_kind)
        metadata, mime_type = MediaProbe(), OCTET_STREAM
        if sniffed is not None:
            async with _PROBE_SLOTS:
                metadata = await asyncio.to_thread(probe, upload.path, sniffed)
            mime_type = sniffed.mime_type
        # One user's concurrent uploads queue here, so that each sees the others in the checks.
        if limited:
            await session.execute(select(User.id).where(User.id == uploader_id).with_for_update())
            await check_upload_allowed(session, uploader_id, config, incoming_bytes=upload.size)
        await lock_content(session, upload.sha256)
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


async def store_generated(
    session: AsyncSession,
    storage: Storage,
    config: MediaConfig,
    uploader_id: int,
    data: bytes,
    *,
    kind: MediaKind,
    filename: str,
) -> Media:
    """Media the AI made (a drawn image): stored as an upload of its bot user, typed from its
    bytes like any upload, without the upload limits meant for people."""
    upload = await spool_upload(_single_chunk(data), config)
    return await store_upload(
        session,
        storage,
        config,
        uploader_id,
        upload,
        declared_kind=kind,
        filename=filename,
        limited=False,
    )


async def lock_content(session: AsyncSession, sha256: str) -> None:
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


def sweep_spool(directory: Path, cutoff: float) -> None:
    """Removes spooled files last written before `cutoff` (a timestamp): a crash's leftovers."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name.startswith("upload-") and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
