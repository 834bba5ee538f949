"""Serving stored media over HTTP: single byte ranges, the real content type, a disposition
that never lets a browser render an upload as a page, and cache validators."""

from __future__ import annotations

import os
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.errors import NotFound
from core.media_probe import THUMBNAIL_MIME
from core.media_types import OCTET_STREAM
from core.storage import Storage, blob_key
from models import Media, MediaKind
from services.media.policy import download_filename

INLINE_KINDS = frozenset({MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.AUDIO, MediaKind.VOICE})
CACHE_CONTROL = "private, max-age=3600"


class RangeNotSatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """First and last byte of a single `bytes=` range; None to send the whole file (no header,
    a malformed one, or several ranges). Raises RangeNotSatisfiable."""
    if not header or len(header) > 64 or not header.startswith("bytes="):
        return None
    first, dash, last = header[len("bytes=") :].strip().partition("-")
    if not dash or "," in last or not (first + last).isascii():
        return None
    if not first:
        if not last.isdigit():
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback name and the exact name in UTF-8."""
    fallback = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\%;' else "_" for ch in filename
    ).strip()
    return (
        f'{disposition}; filename="{fallback or "download"}"; '
        f"filename*=UTF-8''{quote(filename, safe='')}"
    )


async def serve_media(
    request: Request, storage: Storage, media: Media, *, thumbnail: bool = False
) -> Response:
    if thumbnail:
        if media.thumbnail_key is None:
            raise NotFound("This media has no thumbnail", code="thumbnail_not_found")
        key, mime_type = media.thumbnail_key, THUMBNAIL_MIME
        filename = os.path.splitext(download_filename(media))[0] + ".webp"
        inline, etag = True, f'"{media.sha256}-thumbnail"'
    else:
        key = blob_key(media.sha256)
        inline = media.kind in INLINE_KINDS
        mime_type = media.mime_type if inline else OCTET_STREAM
        filename, etag = download_filename(media), f'"{media.sha256}"'
    size = await storage.size(key)
    if size is None:
        raise NotFound("Media not found", code="media_not_found")
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "Content-Disposition": content_disposition("inline" if inline else "attachment", filename),
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if_range = request.headers.get("if-range")
    try:
        selected = (
            None if if_range not in (None, etag) else byte_range(request.headers.get("range"), size)
        )
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if selected is None:
        return StreamingResponse(
            storage.read(key),
            media_type=mime_type,
            headers={**headers, "Content-Length": str(size)},
        )
    start, end = selected
    return StreamingResponse(
        storage.read(key, start, end + 1),
        status_code=206,
        media_type=mime_type,
        headers={
            **headers,
            "Content-Length": str(end - start + 1),
            "Content-Range": f"bytes {start}-{end}/{size}",
        },
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags
