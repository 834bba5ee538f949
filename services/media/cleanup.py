"""Removing uploads that no message shows, and the stored files no remaining upload shares."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import Storage, blob_key, thumbnail_key
from models import Media, MessageMedia
from services.media.storage import lock_content

UNATTACHED_MAX_AGE = timedelta(days=1)
CLEANUP_BATCH = 200


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
        await lock_content(session, sha256)
        shared = select(Media.id).where(Media.sha256 == sha256).limit(1)
        if (await session.scalars(shared)).first() is None:
            await storage.delete(blob_key(sha256))
            await storage.delete(thumbnail_key(sha256))
    return len(deleted)
