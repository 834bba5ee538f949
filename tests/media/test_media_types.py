from __future__ import annotations

import pytest

from core.media_types import (
    GIF,
    JPEG,
    M4A,
    MP3,
    MP4,
    OGG_OPUS,
    OGG_VORBIS,
    PNG,
    QUICKTIME,
    WAV,
    WEBM,
    WEBP,
    SniffedType,
    sniff,
)
from tests.media.samples import (
    HTML,
    MP3_FRAME,
    SVG,
    gif_bytes,
    iso_media,
    jpeg_bytes,
    mp3_bytes,
    ogg_opus_head,
    png_bytes,
    wav_bytes,
    webm_bytes,
    webp_bytes,
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (jpeg_bytes(), JPEG),
        (png_bytes(), PNG),
        (gif_bytes(), GIF),
        (webp_bytes(), WEBP),
        (wav_bytes(), WAV),
        (mp3_bytes(), MP3),
        (mp3_bytes(id3=False), MP3),
        (ogg_opus_head(), OGG_OPUS),
        (ogg_opus_head().replace(b"OpusHead", b"\x01vorbis\x00"), OGG_VORBIS),
        (iso_media(b"isom"), MP4),
        (iso_media(b"mp42"), MP4),
        (iso_media(b"qt  "), QUICKTIME),
        (iso_media(b"M4A "), M4A),
        (webm_bytes(), WEBM),
    ],
)
def test_allowed_formats_are_recognized_by_their_bytes(data: bytes, expected: SniffedType) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        SVG,
        HTML,
        b"%PDF-1.7\n",
        b"MZ\x90\x00",
        b"PK\x03\x04",
        b"",
        iso_media(b"heic"),
        iso_media(b"avif"),
        iso_media(b"3gp4"),
        webm_bytes().replace(b"webm", b"mkvx"),
        b"OggS\x00\x02" + bytes(20) + b"\x01\x08OggTheora",
        b"RIFF\x00\x00\x00\x00AVI ",
        b"ID3\x04\x00\x00\x00\x00\x00\x00<html>",
        b"\xff\xf1\x50\x80",  # ADTS AAC, not MPEG Layer III
        b"\xff\xfb\xf0\x64",  # Layer III sync with a "bad" bitrate index
        b"\xff\xd8",
    ],
)
def test_anything_else_is_not_a_media_type(data: bytes) -> None:
    assert sniff(data) is None


def test_an_id3_tag_longer_than_the_head_still_marks_an_mp3() -> None:
    tag = b"ID3\x04\x00\x00\x00\x01\x00\x00"  # a 16 KiB tag: cover art
    assert sniff(tag + bytes(4000)) == MP3


def test_padding_after_the_id3_tag_is_skipped() -> None:
    assert sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(16) + MP3_FRAME) == MP3
