"""How this process receives media: where uploads spool, and the limits on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings


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
