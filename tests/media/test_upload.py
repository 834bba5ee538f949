from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from PIL import Image

from core.media_probe import MAX_IMAGE_PIXELS
from core.settings import Settings
from core.storage import blob_key
from tests.media.conftest import ServerFactory, upload, uploaded
from tests.media.samples import (
    HTML,
    SVG,
    gif_bytes,
    iso_media,
    jpeg_bytes,
    mp3_bytes,
    ogg_opus_head,
    png_bomb,
    png_bytes,
    wav_bytes,
    webm_bytes,
    webp_bytes,
)
from tests.support.api import ApiUser


async def test_a_png_is_a_photo_with_its_size_and_a_thumbnail(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    data = png_bytes(400, 300)
    body = await uploaded(alice, data, "cat.png", content_type="image/png")
    assert body["kind"] == "photo"
    assert body["mime_type"] == "image/png"
    assert (body["size"], body["width"], body["height"]) == (len(data), 400, 300)
    assert body["duration"] is None
    assert body["filename"] == "cat.png"
    assert body["url"].startswith(f"{client.base_url}/media/{body['id']}?exp=")
    thumbnail = await client.get(body["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (320, 240)


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [(gif_bytes(), "image/gif"), (webp_bytes(), "image/webp"), (jpeg_bytes(), "image/jpeg")],
)
async def test_every_allowed_image_format_is_a_photo(
    alice: ApiUser, data: bytes, mime_type: str
) -> None:
    body = await uploaded(alice, data, "picture")
    assert (body["kind"], body["mime_type"]) == ("photo", mime_type)
    assert body["thumbnail_url"] is not None


async def test_a_photo_turned_by_exif_reports_the_size_it_is_shown_at(alice: ApiUser) -> None:
    body = await uploaded(alice, jpeg_bytes(64, 48, orientation=6), "portrait.jpg")
    assert (body["width"], body["height"]) == (48, 64)


@pytest.mark.parametrize(
    ("data", "kind", "mime_type", "duration"),
    [
        (wav_bytes(0.5), "audio", "audio/wav", 0.5),
        (mp3_bytes(40), "audio", "audio/mpeg", pytest.approx(1.0425)),
        (iso_media(b"M4A "), "audio", "audio/mp4", 3.0),
        (ogg_opus_head(), "audio", "audio/ogg", None),
        (iso_media(b"isom"), "video", "video/mp4", 3.0),
        (iso_media(b"qt  "), "video", "video/quicktime", 3.0),
        (webm_bytes(2500), "video", "video/webm", 2.5),
    ],
)
async def test_audio_and_video_are_typed_from_their_bytes_with_a_duration(
    alice: ApiUser, data: bytes, kind: str, mime_type: str, duration: object
) -> None:
    body = await uploaded(alice, data, "clip.bin")
    assert (body["kind"], body["mime_type"], body["duration"]) == (kind, mime_type, duration)
    assert body["thumbnail_url"] is None


async def test_a_voice_message_is_audio_declared_as_voice(alice: ApiUser) -> None:
    body = await uploaded(alice, wav_bytes(0.25), "voice.wav", kind="voice")
    assert (body["kind"], body["duration"]) == ("voice", 0.25)


@pytest.mark.parametrize(
    ("data", "mime_type", "duration"),
    [(webm_bytes(1500), "audio/webm", 1.5), (iso_media(b"iso5"), "audio/mp4", 3.0)],
    ids=["webm-from-chromium-or-firefox", "mp4-from-safari"],
)
async def test_a_voice_recorded_by_a_browser_is_stored_as_audio(
    alice: ApiUser, data: bytes, mime_type: str, duration: float
) -> None:
    body = await uploaded(alice, data, "voice", kind="voice")
    assert (body["kind"], body["mime_type"], body["duration"]) == ("voice", mime_type, duration)


async def test_a_webm_declared_as_a_photo_is_refused(alice: ApiUser) -> None:
    response = await upload(alice, webm_bytes(), "clip.webm", kind="photo")
    assert response.status_code == 415
    assert response.json()["code"] == "media_type_mismatch"


async def test_png_bytes_named_exe_are_a_photo_named_png(alice: ApiUser) -> None:
    body = await uploaded(alice, png_bytes(), "setup.exe", content_type="application/x-msdownload")
    assert (body["kind"], body["mime_type"], body["filename"]) == (
        "photo",
        "image/png",
        "setup.png",
    )


async def test_html_named_jpg_is_refused_as_a_photo(alice: ApiUser) -> None:
    response = await upload(alice, HTML, "kitten.jpg", content_type="image/jpeg", kind="photo")
    assert response.status_code == 415
    assert response.json()["code"] == "media_type_mismatch"
    assert "A photo must be a JPEG, PNG, WebP or GIF image" in response.json()["error"]


async def test_mp3_bytes_declared_as_a_photo_are_refused(alice: ApiUser) -> None:
    response = await upload(
        alice, mp3_bytes(), "photo.jpg", content_type="image/jpeg", kind="photo"
    )
    assert response.status_code == 415
    assert "MP3 audio" in response.json()["error"]


async def test_an_image_declared_as_voice_is_refused(alice: ApiUser) -> None:
    response = await upload(alice, png_bytes(), "voice.ogg", kind="voice")
    assert response.status_code == 415
    assert response.json()["code"] == "media_type_mismatch"


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [(HTML, "kitten.jpg", "image/jpeg"), (SVG, "logo.svg", "image/svg+xml")],
)
async def test_html_and_svg_are_only_documents_served_as_downloads(
    alice: ApiUser, client: httpx.AsyncClient, data: bytes, filename: str, content_type: str
) -> None:
    body = await uploaded(alice, data, filename, content_type=content_type)
    assert (body["kind"], body["mime_type"], body["thumbnail_url"]) == (
        "document",
        "application/octet-stream",
        None,
    )
    response = await client.get(body["url"])
    assert response.content == data
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{filename}"')
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_svg_declared_as_a_photo_is_refused(alice: ApiUser) -> None:
    response = await upload(alice, SVG, "logo.svg", content_type="image/svg+xml", kind="photo")
    assert response.status_code == 415


async def test_an_image_sent_as_a_document_stays_a_download(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    body = await uploaded(alice, png_bytes(), "scan.png", kind="document")
    assert (body["kind"], body["mime_type"], body["width"]) == (
        "document",
        "application/octet-stream",
        None,
    )
    response = await client.get(body["url"])
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_a_png_that_does_not_decode_is_refused(alice: ApiUser) -> None:
    response = await upload(alice, b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "broken.png")
    assert response.status_code == 415
    assert response.json()["code"] == "image_invalid"


@pytest.mark.parametrize(
    ("width", "height"), [(100_000, 100_000), (8000, MAX_IMAGE_PIXELS // 8000 + 1)]
)
async def test_decompression_bombs_are_refused(alice: ApiUser, width: int, height: int) -> None:
    response = await upload(alice, png_bomb(width, height), "bomb.png")
    assert response.status_code == 415
    assert response.json()["code"] == "image_too_large"


@pytest.mark.parametrize(
    ("filename", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/tmp/../../x.txt", "x.txt"),
        ("..", "document-{id}"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
    ],
)
async def test_a_path_in_the_filename_is_only_metadata(
    alice: ApiUser, settings: Settings, filename: str, kept: str
) -> None:
    data = f"content of {filename}".encode()
    body = await uploaded(alice, data, filename, content_type="text/plain")
    assert body["filename"] == kept.format(id=body["id"])
    stored = settings.media_dir / blob_key(hashlib.sha256(data).hexdigest())
    assert stored.read_bytes() == data
    assert not (settings.media_dir.parent.parent / "etc").exists()
    assert not (settings.media_dir.parent / "x.txt").exists()


async def test_aeon_upload_media_answers_in_aeon_shape_with_a_loadable_url(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    data = png_bytes()
    response = await upload(alice, data, "a.png", path="/api/v1/messages/upload-media")
    assert response.status_code == 200
    body = response.json()
    assert body["media_url"].startswith(f"{client.base_url}/media/{body['media_id']}?exp=")
    assert (body["media_type"], body["media_size"], body["message_type"], body["filename"]) == (
        "image/png",
        len(data),
        "photo",
        "a.png",
    )
    loaded = await client.get(body["media_url"])
    assert loaded.content == data


async def test_aeon_upload_media_takes_the_kind_too(alice: ApiUser) -> None:
    response = await upload(
        alice, wav_bytes(), "v.wav", kind="voice", path="/api/v1/messages/upload-media/"
    )
    assert response.json()["message_type"] == "voice"


async def test_public_base_url_makes_the_urls(media_server: ServerFactory) -> None:
    async with media_server(public_base_url="https://api.example.com/") as served:
        user = await served.sign_up(301, "Pat")
        body = await uploaded(user, png_bytes())
    assert body["url"].startswith(f"https://api.example.com/media/{body['id']}?exp=")


async def test_an_upload_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/media", files={"file": ("a.png", png_bytes())})
    assert response.status_code == 401


async def test_a_json_body_is_not_an_upload(alice: ApiUser) -> None:
    response = await alice.post("/api/v1/media", json={"file": "x"})
    assert response.status_code == 415
    assert response.json()["code"] == "multipart_required"


async def test_the_file_field_is_required(alice: ApiUser) -> None:
    response = await alice.post(
        "/api/v1/media", files={"kind": (None, "photo")}, data={"other": "x"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "file_missing"


async def test_an_unknown_kind_is_refused(alice: ApiUser) -> None:
    response = await upload(alice, png_bytes(), kind="sticker")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_media_kind"


async def test_an_empty_file_is_refused(alice: ApiUser) -> None:
    response = await upload(alice, b"", "empty.txt")
    assert response.status_code == 422
    assert response.json()["code"] == "file_empty"


async def test_one_file_per_upload(alice: ApiUser) -> None:
    response = await alice.post(
        "/api/v1/media",
        files=[("file", ("a.png", png_bytes())), ("file", ("b.png", png_bytes()))],
    )
    assert response.status_code == 400
    assert response.json()["code"] == "multiple_files"
