from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.storage import LocalStorage, blob_key, thumbnail_key
from tests.media.conftest import ServerFactory, stored_files, uploaded
from tests.media.samples import png_bytes, wav_bytes

KEY = blob_key("ab" * 32)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def read_all(
    storage: LocalStorage, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def test_local_storage_writes_reads_ranges_and_deletes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.write(KEY, chunks(b"hello ", b"world"))
    assert await storage.size(KEY) == 11
    assert await read_all(storage, KEY) == b"hello world"
    assert await read_all(storage, KEY, 6) == b"world"
    assert await read_all(storage, KEY, 2, 5) == b"llo"
    await storage.delete(KEY)
    assert not await storage.exists(KEY)
    await storage.delete(KEY)


async def test_a_big_object_reads_back_in_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = bytes(range(256)) * 1000
    await storage.write(KEY, chunks(data))
    assert await read_all(storage, KEY, 1000, 200_000) == data[1000:200_000]


async def test_put_file_moves_a_local_file_into_place(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    source = tmp_path / "upload"
    source.write_bytes(b"spooled")
    await storage.put_file(KEY, source)
    assert not source.exists()
    assert await read_all(storage, KEY) == b"spooled"


@pytest.mark.parametrize(
    "key", ["../escape", "/etc/passwd", "ab/cd/../../x", "AB/CD/" + "A" * 64, "ab/cd/ef"]
)
async def test_keys_that_are_not_content_hashes_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(ValueError, match="not a storage key"):
        await storage.write(key, chunks(b"x"))


async def test_concurrent_writers_of_one_key_leave_one_intact_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = b"same content " * 10_000
    await asyncio.gather(*(storage.write(KEY, chunks(data[:5000], data[5000:])) for _ in range(8)))
    assert await read_all(storage, KEY) == data
    assert stored_files(tmp_path) == [tmp_path / KEY]


async def test_identical_uploads_are_stored_once(media_server: ServerFactory) -> None:
    data = png_bytes(50, 50)
    sha256 = hashlib.sha256(data).hexdigest()
    async with media_server() as served:
        alice = await served.sign_up(501, "Alice")
        bob = await served.sign_up(502, "Bob")
        first = await uploaded(alice, data, "one.png")
        second = await uploaded(bob, data, "two.png")
        downloads = [(await served.client.get(item["url"])).content for item in (first, second)]
    media_dir = served.settings.media_dir
    assert first["id"] != second["id"]
    assert (first["filename"], second["filename"]) == ("one.png", "two.png")
    assert stored_files(media_dir) == sorted(
        [media_dir / blob_key(sha256), media_dir / thumbnail_key(sha256)]
    )
    assert downloads == [data, data]


async def test_concurrent_uploads_distinct_and_identical(media_server: ServerFactory) -> None:
    distinct = [png_bytes(20 + n, 20, color=(n, 0, 0)) for n in range(8)]
    same = wav_bytes(0.2)
    async with media_server() as served:
        users = [await served.sign_up(510 + n, f"User{n}") for n in range(3)]
        uploads = [(users[n % 3], data) for n, data in enumerate(distinct)]
        uploads += [(users[n % 3], same) for n in range(7)]
        items = await asyncio.gather(*(uploaded(user, data) for user, data in uploads))
        downloads = await asyncio.gather(*(served.client.get(item["url"]) for item in items))
    assert len({item["id"] for item in items}) == len(uploads)
    assert [response.content for response in downloads] == [data for _, data in uploads]
    expected_blobs = {hashlib.sha256(data).hexdigest() for data in [*distinct, same]}
    files = stored_files(served.settings.media_dir)
    assert {path.name for path in files if "." not in path.name} == expected_blobs
    assert len(files) == len(expected_blobs) + len(distinct)  # and a thumbnail per image
