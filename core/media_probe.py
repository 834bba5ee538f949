"""Metadata of a sniffed file: image size and thumbnail (Pillow), audio and video duration.

Everything here blocks (decoding, file reads): call it in a worker thread, never on the loop.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mutagen import FileType, MutagenError
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from PIL import ExifTags, Image, ImageOps

from core.errors import UnsupportedMediaType
from core.media_types import MediaFamily, SniffedType, read_vint

# Well below Pillow's own bomb limit: a decoded RGBA image of this size is 160 MiB.
MAX_IMAGE_PIXELS = 40_000_000
THUMBNAIL_SIZE = (320, 320)
THUMBNAIL_MIME = "image/webp"

_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}
_DURATION_READERS: dict[str, Callable[[Path], FileType]] = {
    "mp3": MP3,
    "mp4": MP4,
    "quicktime": MP4,
    "m4a": MP4,
    "opus": OggOpus,
    "vorbis": OggVorbis,
    "wav": WAVE,
}
# EXIF orientations that turn the picture by 90 degrees.
_TRANSPOSED = frozenset({5, 6, 7, 8})

_WEBM_SCAN_BYTES = 64 * 1024
_EBML_SEGMENT = 0x18538067
_EBML_INFO = 0x1549A966
_EBML_CLUSTER = 0x1F43B675
_EBML_TIMESTAMP_SCALE = 0x2AD7B1
_EBML_DURATION = 0x4489


@dataclass(frozen=True, slots=True)
class MediaProbe:
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    thumbnail: bytes | None = None


def probe(path: Path, sniffed: SniffedType) -> MediaProbe:
    """Images must decode (415 otherwise); a duration is best effort, None when unreadable."""
    if sniffed.family is MediaFamily.IMAGE:
        return _probe_image(path, sniffed)
    if sniffed.format == "webm":
        with path.open("rb") as file:
            return MediaProbe(duration=_webm_duration(file.read(_WEBM_SCAN_BYTES)))
    return MediaProbe(duration=_duration(path, sniffed))


def _probe_image(path: Path, sniffed: SniffedType) -> MediaProbe:
    try:
        with Image.open(path, formats=[_PILLOW_FORMATS[sniffed.format]]) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnsupportedMediaType(
                    f"The image is too large ({width}x{height} pixels; at most "
                    f"{MAX_IMAGE_PIXELS} pixels)",
                    code="image_too_large",
                )
            if image.getexif().get(ExifTags.Base.Orientation) in _TRANSPOSED:
                width, height = height, width
            image.draft("RGB", THUMBNAIL_SIZE)
            thumbnail = ImageOps.exif_transpose(image)
            thumbnail.thumbnail(THUMBNAIL_SIZE)
            if thumbnail.mode not in ("RGB", "RGBA"):
                thumbnail = thumbnail.convert("RGBA" if thumbnail.has_transparency_data else "RGB")
            buffer = io.BytesIO()
            thumbnail.save(buffer, "WEBP", quality=80)
    except Image.DecompressionBombError as exc:
        raise UnsupportedMediaType(
            f"The image is too large (at most {MAX_IMAGE_PIXELS} pixels)", code="image_too_large"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMediaType(
            f"The file starts like a {sniffed.label} image but cannot be decoded",
            code="image_invalid",
        ) from exc
    return MediaProbe(width=width, height=height, thumbnail=buffer.getvalue())


def _duration(path: Path, sniffed: SniffedType) -> float | None:
    reader = _DURATION_READERS.get(sniffed.format)
    if reader is None:
        return None
    try:
        length = getattr(reader(path).info, "length", None)
    except (MutagenError, OSError, ValueError, struct.error):
        return None
    return _seconds(length)


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _ebml_element(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Id, body offset and body size of the EBML element at `offset`."""
    element = read_vint(data, offset, keep_marker=True)
    if element is None:
        return None
    element_id, offset = element
    size = read_vint(data, offset)
    if size is None:
        return None
    return element_id, size[1], size[0]


def _webm_duration(data: bytes) -> float | None:
    offset = 0
    while (element := _ebml_element(data, offset)) is not None:
        element_id, start, size = element
        if element_id == _EBML_SEGMENT:
            offset = start  # descend; a live recording's segment has an unknown size
        elif element_id == _EBML_INFO:
            return _webm_info_duration(data[start : start + size])
        elif element_id == _EBML_CLUSTER:
            return None
        else:
            offset = start + size
    return None


def _webm_info_duration(info: bytes) -> float | None:
    scale_ns, duration = 1_000_000, None
    offset = 0
    while (element := _ebml_element(info, offset)) is not None:
        element_id, start, size = element
        body = info[start : start + size]
        if element_id == _EBML_TIMESTAMP_SCALE and body:
            scale_ns = int.from_bytes(body)
        elif element_id == _EBML_DURATION and len(body) in (4, 8):
            duration = struct.unpack(">f" if len(body) == 4 else ">d", body)[0]
        offset = start + size
    return _seconds(duration * scale_ns / 1e9) if duration is not None else None
