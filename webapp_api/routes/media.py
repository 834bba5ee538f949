"""Uploads and downloads of media: with credentials under /api/v1, and by signed URL under
/media for tags (<img>, <audio>, <video>) that cannot send headers.

These routes authenticate in a unit of work of their own instead of the request's `Session`:
no database transaction (on SQLite, the write lock) stays open while a file streams.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.bounds import Id
from core.db import read_session, unit_of_work
from core.errors import AppError, Unprocessable
from core.signing import MediaUrls, MediaUrlSigner, media_path, media_urls
from models import Media, MediaKind, User
from services.media import attachments, policy, storage
from services.views.media import AeonUploadedMedia, MediaView
from webapp_api.context import AppContext
from webapp_api.deps import Caller, Context
from webapp_api.media_http import serve_media
from webapp_api.schemas.errors import errors
from webapp_api.uploads import MultipartUpload

router = APIRouter(tags=["media"])

# A download's other answers (Range and conditional requests).
DOWNLOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    206: {"description": "The requested byte range (`Range`)"},
    304: {"description": "Not modified since the client's copy (`If-None-Match`)"},
    416: {"description": "The requested range lies outside the file"},
}

# The body is parsed as it streams (see webapp_api.uploads), so it is described here.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {"type": "string", "enum": [kind.value for kind in MediaKind]},
                    },
                }
            }
        },
    }
}


def _urls(request: Request, context: AppContext) -> MediaUrls:
    return media_urls(context.settings, context.auth.secret_key, str(request.base_url))


def _declared_kind(value: str | None) -> MediaKind | None:
    """The form's `kind`: absent means "tell from the bytes"; an empty one is no kind at all."""
    if value is None:
        return None
    try:
        return MediaKind(value.strip().lower())
    except ValueError:
        allowed = ", ".join(kind.value for kind in MediaKind)
        raise Unprocessable(f"kind must be one of: {allowed}", code="invalid_media_kind") from None


async def _receive(request: Request, user: User, context: AppContext) -> Media:
    config = context.media
    form = MultipartUpload(request, config.max_upload_bytes)
    async with read_session(context.sessionmaker) as session:
        await policy.check_upload_allowed(session, user.id, config)
    async with aclosing(form.file_chunks()) as chunks:
        upload = await storage.spool_upload(chunks, config)
    try:
        declared_kind = _declared_kind(form.fields.get("kind"))
    except AppError:
        await upload.discard()
        raise
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        return await storage.store_upload(
            session,
            context.storage,
            config,
            user.id,
            upload,
            declared_kind=declared_kind,
            filename=form.filename,
        )


@router.post(
    "/api/v1/media",
    response_model=MediaView,
    openapi_extra=UPLOAD_BODY,
    responses=errors(400, 401, 413, 415, 422, 429),
)
async def upload_media(request: Request, user: Caller, context: Context) -> MediaView:
    """Multipart field `file`, optional field `kind` (photo, video, audio, voice, document)."""
    stored = await _receive(request, user, context)
    return MediaView.of(stored, _urls(request, context))


@router.post(
    "/api/v1/messages/upload-media",
    response_model=AeonUploadedMedia,
    openapi_extra=UPLOAD_BODY,
    responses=errors(400, 401, 413, 415, 422, 429),
)
async def upload_media_aeon(request: Request, user: Caller, context: Context) -> AeonUploadedMedia:
    """Aeon's upload: the same engine and fields, Aeon's answer."""
    stored = await _receive(request, user, context)
    return AeonUploadedMedia.of(MediaView.of(stored, _urls(request, context)))


async def _readable(context: AppContext, user: User, media_id: int) -> Media:
    async with read_session(context.sessionmaker) as session:
        return await attachments.get_media_for_download(session, user.id, media_id)


async def _signed(
    context: AppContext, media_id: int, exp: str | None, sig: str | None, *, thumbnail: bool
) -> Media:
    MediaUrlSigner(context.auth.secret_key, context.settings.media_url_ttl).verify(
        media_path(media_id, thumbnail=thumbnail), exp, sig
    )
    async with read_session(context.sessionmaker) as session:
        return await attachments.get_media(session, media_id)


@router.get(
    "/api/v1/media/{media_id}",
    response_class=Response,
    responses={**DOWNLOAD_ANSWERS, **errors(401, 404, 422)},
)
async def download_media(
    media_id: Id, request: Request, user: Caller, context: Context
) -> Response:
    item = await _readable(context, user, media_id)
    return await serve_media(request, context.storage, item)


@router.get(
    "/api/v1/media/{media_id}/thumbnail",
    response_class=Response,
    responses={**DOWNLOAD_ANSWERS, **errors(401, 404, 422)},
)
async def download_thumbnail(
    media_id: Id, request: Request, user: Caller, context: Context
) -> Response:
    item = await _readable(context, user, media_id)
    return await serve_media(request, context.storage, item, thumbnail=True)


@router.get(
    "/media/{media_id}",
    response_class=Response,
    responses={**DOWNLOAD_ANSWERS, **errors(403, 404, 422)},
)
async def download_signed(
    media_id: Id,
    request: Request,
    context: Context,
    exp: str | None = None,
    sig: str | None = None,
) -> Response:
    """By signed URL (as found in message payloads): no headers needed; 403 when the signature
    is wrong or expired."""
    item = await _signed(context, media_id, exp, sig, thumbnail=False)
    return await serve_media(request, context.storage, item)


@router.get(
    "/media/{media_id}/thumbnail",
    response_class=Response,
    responses={**DOWNLOAD_ANSWERS, **errors(403, 404, 422)},
)
async def download_signed_thumbnail(
    media_id: Id,
    request: Request,
    context: Context,
    exp: str | None = None,
    sig: str | None = None,
) -> Response:
    item = await _signed(context, media_id, exp, sig, thumbnail=True)
    return await serve_media(request, context.storage, item, thumbnail=True)
