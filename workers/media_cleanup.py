"""The media cleanup loop: each web process runs it (see webapp_api.context), removing uploads
never sent in a message once they are a day old, and spool files a crash left behind."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import unit_of_work
from core.storage import Storage
from models.base import utcnow
from services.media.cleanup import CLEANUP_BATCH, UNATTACHED_MAX_AGE, cleanup_unattached
from services.media.storage import sweep_spool

logger = logging.getLogger(__name__)

CLEANUP_INTERVAL = 3600.0  # seconds


async def run_media_cleanup(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker,
    storage: Storage,
    *,
    spool_dir: Path | None = None,
    now: datetime | None = None,
) -> int:
    """One cleanup pass, a unit of work per batch; also removes stale spool files."""
    cutoff = (now or utcnow()) - UNATTACHED_MAX_AGE
    total = 0
    while True:
        async with unit_of_work(sessionmaker, broker) as session:
            removed = await cleanup_unattached(session, storage, older_than=cutoff)
        total += removed
        if removed < CLEANUP_BATCH:
            break
    if spool_dir is not None:
        await asyncio.to_thread(sweep_spool, spool_dir, cutoff.timestamp())
    if total:
        logger.info("media cleanup removed %d unattached uploads", total)
    return total


async def run_media_cleanup_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker,
    storage: Storage,
    *,
    spool_dir: Path,
) -> None:
    """A pass at start-up and every CLEANUP_INTERVAL seconds, for a background task (cancel it
    to stop)."""
    while True:
        try:
            await run_media_cleanup(sessionmaker, broker, storage, spool_dir=spool_dir)
        except Exception:
            logger.exception("media cleanup failed; retrying in %.0f s", CLEANUP_INTERVAL)
        await asyncio.sleep(CLEANUP_INTERVAL)
