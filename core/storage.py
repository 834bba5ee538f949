"""Where media bytes live, behind a small interface: the local filesystem here; an S3-compatible
store implements the same methods and nothing that calls them changes.

Keys are derived from content hashes (see `blob_key`), never from anything a client sent.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from core.settings import Settings

CHUNK_BYTES = 64 * 1024

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]+)*$")


def blob_key(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def thumbnail_key(sha256: str) -> str:
    return f"{blob_key(sha256)}.thumb.webp"


class Storage(ABC):
    @abstractmethod
    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        """Store the bytes under `key`; readers never see a partly written object."""

    async def put_file(self, key: str, path: Path) -> None:
        """Store a local file under `key`, consuming (removing) the file."""

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as file:
                while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                    yield chunk

        await self.write(key, chunks())
        await asyncio.to_thread(path.unlink, missing_ok=True)

    @abstractmethod
    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes in [start, end) of the object (to its end when `end` is None)."""

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The object's size in bytes, None when there is no such object."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None


class LocalStorage(Storage):
    """Files under `root`, written to a temporary file beside the target and renamed into place,
    so that concurrent writers of the same content cannot corrupt each other."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        target = self.path(key)
        file, temp = await asyncio.to_thread(_open_temp, target.parent)
        try:
            with file:
                async for chunk in chunks:
                    await asyncio.to_thread(file.write, chunk)
                await asyncio.to_thread(sync_file, file)
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def put_file(self, key: str, path: Path) -> None:
        target = self.path(key)
        try:
            await asyncio.to_thread(_move, path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            await super().put_file(key, path)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(self.path(key).open, "rb")
        try:
            await asyncio.to_thread(file.seek, start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                wanted = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                chunk = await asyncio.to_thread(file.read, wanted)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.path(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)


def create_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.media_dir)


def _open_temp(directory: Path) -> tuple[BinaryIO, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    return os.fdopen(fd, "wb"), Path(name)


def sync_file(file: BinaryIO) -> None:
    """Flush to disk before a rename publishes the file."""
    file.flush()
    os.fsync(file.fileno())


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
