from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import MemoryBroker
from core.db import unit_of_work
from core.settings import Settings
from core.storage import LocalStorage, blob_key, thumbnail_key
from models import Media
from models.base import utcnow
from services.media.config import MediaConfig
from tests.media.conftest import ServerFactory, attach, uploaded
from tests.media.samples import png_bytes
from tests.support.api import ApiUser
from workers.media_cleanup import run_media_cleanup

A_DAY_LATER = timedelta(days=1, minutes=1)


async def media_ids(sessionmaker: async_sessionmaker[AsyncSession]) -> set[int]:
    async with sessionmaker() as session:
        return set(await session.scalars(select(Media.id)))


async def test_unattached_uploads_older_than_a_day_go_with_their_files(
    alice: ApiUser, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    kept_data, dropped_data = png_bytes(color=(9, 9, 9)), png_bytes(color=(8, 8, 8))
    kept = await uploaded(alice, kept_data)
    dropped = await uploaded(alice, dropped_data)
    chat = await alice.create_group("Album")
    await attach(alice, chat["id"], [kept["id"]], "kept")
    storage = LocalStorage(settings.media_dir)

    assert await run_media_cleanup(sessionmaker, MemoryBroker(), storage) == 0
    removed = await run_media_cleanup(
        sessionmaker, MemoryBroker(), storage, now=utcnow() + A_DAY_LATER
    )

    assert removed == 1
    assert await media_ids(sessionmaker) == {kept["id"]}
    dropped_sha = hashlib.sha256(dropped_data).hexdigest()
    assert not (settings.media_dir / blob_key(dropped_sha)).exists()
    assert not (settings.media_dir / thumbnail_key(dropped_sha)).exists()
    kept_sha = hashlib.sha256(kept_data).hexdigest()
    assert (settings.media_dir / blob_key(kept_sha)).read_bytes() == kept_data
    assert (await alice.get(f"/api/v1/media/{dropped['id']}")).status_code == 404


async def test_a_file_another_upload_shares_is_kept(
    alice: ApiUser, bob: ApiUser, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    data = png_bytes(color=(7, 7, 7))
    abandoned = await uploaded(alice, data)
    sent = await uploaded(bob, data)
    chat = await bob.create_group("Shared")
    await attach(bob, chat["id"], [sent["id"]], "same picture")

    await run_media_cleanup(
        sessionmaker, MemoryBroker(), LocalStorage(settings.media_dir), now=utcnow() + A_DAY_LATER
    )

    assert await media_ids(sessionmaker) == {sent["id"]}
    assert abandoned["id"] != sent["id"]
    assert (await bob.get(f"/api/v1/media/{sent['id']}")).content == data


async def test_stale_spooled_uploads_are_swept(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    spool_dir = MediaConfig.from_settings(settings).spool_dir
    spool_dir.mkdir(parents=True, exist_ok=True)
    stale, fresh = spool_dir / "upload-stale", spool_dir / "upload-fresh"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"being received")
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    os.utime(stale, (two_days_ago, two_days_ago))

    await run_media_cleanup(
        sessionmaker, MemoryBroker(), LocalStorage(settings.media_dir), spool_dir=spool_dir
    )

    assert (stale.exists(), fresh.exists()) == (False, True)
    fresh.unlink()


async def test_a_web_process_removes_day_old_unsent_uploads_and_spool_leftovers(
    alice: ApiUser,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    media_server: ServerFactory,
) -> None:
    stale_data = png_bytes(color=(6, 6, 6))
    stale = await uploaded(alice, stale_data)
    fresh = await uploaded(alice, png_bytes(color=(5, 5, 5)))
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        await session.execute(
            update(Media).where(Media.id == stale["id"]).values(created_at=utcnow() - A_DAY_LATER)
        )
    spool_dir = MediaConfig.from_settings(settings).spool_dir
    leftover = spool_dir / "upload-left-by-a-crash"
    leftover.write_bytes(b"half a file")
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    os.utime(leftover, (two_days_ago, two_days_ago))
    stale_file = settings.media_dir / blob_key(hashlib.sha256(stale_data).hexdigest())
    assert stale_file.exists()

    # Another web process over the same database and storage: its cleanup runs as it starts.
    async with media_server(media_dir=settings.media_dir), asyncio.timeout(10):
        # The loop signals nothing when a pass is done; its effect is in the database.
        while await media_ids(sessionmaker) != {fresh["id"]} or leftover.exists():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    assert not stale_file.exists()
