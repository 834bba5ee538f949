"""What an uploaded file is, decided from its first bytes only, never from its name or the type
the client declared.

Only formats that are safe to show inline are recognized. Everything else (SVG, HTML, PDF, ...)
is an opaque document: `sniff` returns None for it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Enough for every signature below, including a WebM EBML header.
HEAD_BYTES = 4096

OCTET_STREAM = "application/octet-stream"


class MediaFamily(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True, slots=True)
class SniffedType:
    format: str
    label: str
    mime_type: str
    family: MediaFamily
    extension: str


JPEG = SniffedType("jpeg", "JPEG", "image/jpeg", MediaFamily.IMAGE, ".jpg")
PNG = SniffedType("png", "PNG", "image/png", MediaFamily.IMAGE, ".png")
GIF = SniffedType("gif", "GIF", "image/gif", MediaFamily.IMAGE, ".gif")
WEBP = SniffedType("webp", "WebP", "image/webp", MediaFamily.IMAGE, ".webp")
MP4 = SniffedType("mp4", "MP4", "video/mp4", MediaFamily.VIDEO, ".mp4")
QUICKTIME = SniffedType("quicktime", "QuickTime", "video/quicktime", MediaFamily.VIDEO, ".mov")
WEBM = SniffedType("webm", "WebM", "video/webm", MediaFamily.VIDEO, ".webm")
M4A = SniffedType("m4a", "M4A", "audio/mp4", MediaFamily.AUDIO, ".m4a")
MP3 = SniffedType("mp3", "MP3", "audio/mpeg", MediaFamily.AUDIO, ".mp3")
OGG_OPUS = SniffedType("opus", "Ogg/Opus", "audio/ogg", MediaFamily.AUDIO, ".ogg")
OGG_VORBIS = SniffedType("vorbis", "Ogg/Vorbis", "audio/ogg", MediaFamily.AUDIO, ".ogg")
WAV = SniffedType("wav", "WAV", "audio/wav", MediaFamily.AUDIO, ".wav")
WEBM_AUDIO = SniffedType("webm", "WebM", "audio/webm", MediaFamily.AUDIO, ".webm")

# Browsers record voice (MediaRecorder) into video containers: Chromium and Firefox into WebM
# with Opus, Safari into MP4 with AAC. Declared as audio, such a file is stored as audio.
AUDIO_IN_VIDEO_CONTAINER = {WEBM: WEBM_AUDIO, MP4: M4A}

EXTENSIONS = {
    t.mime_type: t.extension
    for t in (JPEG, PNG, GIF, WEBP, MP4, QUICKTIME, WEBM, WEBM_AUDIO, M4A, MP3, OGG_OPUS, WAV)
}

# ISO base media files name their flavour in the `ftyp` box's major brand.
_ISO_BRANDS = {
    **dict.fromkeys((b"M4A ", b"M4B "), M4A),
    b"qt  ": QUICKTIME,
    **dict.fromkeys(
        (
            b"isom",
            b"iso2",
            b"iso4",
            b"iso5",
            b"iso6",
            b"mp41",
            b"mp42",
            b"avc1",
            b"dash",
            b"M4V ",
            b"MSNV",
        ),
        MP4,
    ),
}

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = 0x4282


def sniff(head: bytes) -> SniffedType | None:
    """The allow-listed type whose signature `head` (the file's first bytes) carries."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF":
        return {b"WEBP": WEBP, b"WAVE": WAV}.get(head[8:12])
    if head[4:8] == b"ftyp":
        return _ISO_BRANDS.get(head[8:12])
    if head.startswith(_EBML_MAGIC):
        return WEBM if _ebml_doctype(head) == b"webm" else None
    if head.startswith(b"OggS"):
        return _ogg_codec(head)
    if head.startswith(b"ID3") or _is_mp3_frame(head, 0):
        return MP3 if _is_mp3(head) else None
    return None


def _ogg_codec(head: bytes) -> SniffedType | None:
    if len(head) < 27:
        return None
    # The first page carries the codec's identification packet after its segment table.
    packet = head[27 + head[26] :]
    if packet.startswith(b"OpusHead"):
        return OGG_OPUS
    if packet.startswith(b"\x01vorbis"):
        return OGG_VORBIS
    return None


def _is_mp3(head: bytes) -> bool:
    if not head.startswith(b"ID3"):
        return True
    size_bytes = head[6:10]
    if len(size_bytes) < 4 or head[3] == 0xFF or any(b & 0x80 for b in size_bytes):
        return False
    tag_size = 0
    for byte in size_bytes:
        tag_size = (tag_size << 7) | byte
    offset = 10 + tag_size + (10 if head[5] & 0x10 else 0)
    while offset < len(head) and head[offset] == 0:
        offset += 1
    # A tag longer than the head (cover art) hides the first frame; the tag itself must do.
    return offset >= len(head) or _is_mp3_frame(head, offset)


def _is_mp3_frame(head: bytes, offset: int) -> bool:
    """An MPEG audio Layer III frame header: sync bits, a valid version, bitrate, sample rate."""
    frame = head[offset : offset + 4]
    if len(frame) < 4 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0:
        return False
    version = (frame[1] >> 3) & 0b11
    layer = (frame[1] >> 1) & 0b11
    bitrate = frame[2] >> 4
    sample_rate = (frame[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate not in (0, 0xF) and sample_rate != 0b11


def read_vint(data: bytes, offset: int, *, keep_marker: bool = False) -> tuple[int, int] | None:
    """An EBML variable-length integer at `offset`, and the offset after it."""
    if offset >= len(data) or data[offset] == 0:
        return None
    length = 9 - data[offset].bit_length()
    if offset + length > len(data):
        return None
    value = int.from_bytes(data[offset : offset + length])
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, offset + length


def _ebml_doctype(head: bytes) -> bytes | None:
    header = read_vint(head, len(_EBML_MAGIC))
    if header is None:
        return None
    size, offset = header
    end = min(len(head), offset + size)
    while offset < end:
        element = read_vint(head, offset, keep_marker=True)
        if element is None:
            return None
        element_id, offset = element
        length = read_vint(head, offset)
        if length is None:
            return None
        element_size, offset = length
        if element_id == _EBML_DOCTYPE:
            return head[offset : offset + element_size]
        offset += element_size
    return None
