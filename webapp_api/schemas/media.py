from __future__ import annotations

from pydantic import BaseModel

from models import MediaKind
from services.media.attachments import MediaView


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
