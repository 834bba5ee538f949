"""Images made fit for the vendors: upright, within their limits, without metadata, refused
clearly when unreadable or too large to decode."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from llm.images import MAX_BYTES, MAX_PIXELS, MAX_SIDE, prepare_image
from tests.llm.support import image_bytes


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_large_photo_is_scaled_down_upright_and_stripped() -> None:
    photo = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = "Camera maker"
    exif[0x8825] = {2: (55.0, 45.0, 0.0)}  # GPS
    out = io.BytesIO()
    photo.save(out, "JPEG", exif=exif, icc_profile=b"not really a profile")
    part = prepare_image(out.getvalue())
    assert part.mime_type == "image/jpeg"
    result = opened(part.data)
    assert result.format == "JPEG"
    width, height = result.size
    assert height > width, "turned upright: portrait"
    assert max(width, height) <= MAX_SIDE
    assert width * height <= MAX_PIXELS
    assert width * height > 0.95 * MAX_PIXELS, "not smaller than it needs to be"
    assert abs(height / width - 4 / 3) < 0.01
    assert not result.getexif()
    assert "icc_profile" not in result.info
    assert len(part.data) <= MAX_BYTES


def test_a_long_narrow_image_keeps_its_long_side_within_bounds() -> None:
    part = prepare_image(image_bytes((6000, 40)))
    assert opened(part.data).size == (MAX_SIDE, 10)


def test_a_small_image_is_not_enlarged() -> None:
    part = prepare_image(image_bytes((120, 80)))
    assert opened(part.data).size == (120, 80)
    assert part.mime_type == "image/jpeg"


def test_transparency_is_kept_as_png() -> None:
    part = prepare_image(image_bytes((300, 200), mode="RGBA"))
    assert part.mime_type == "image/png"
    result = opened(part.data)
    assert result.mode == "RGBA"
    assert result.getchannel("A").getextrema() == (0, 255)


def test_an_opaque_alpha_channel_is_no_transparency() -> None:
    screenshot = Image.new("RGBA", (200, 100), (10, 20, 30, 255))
    out = io.BytesIO()
    screenshot.save(out, "PNG")
    assert prepare_image(out.getvalue()).mime_type == "image/jpeg"


def test_a_palette_gif_with_transparency_and_frames_gives_its_first_frame() -> None:
    frames = [Image.new("P", (40, 30), index) for index in (1, 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
        frame.paste(0, (20, 0, 40, 30))  # the right half transparent
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], transparency=0)
    part = prepare_image(out.getvalue())
    assert part.mime_type == "image/png"
    result = opened(part.data)
    assert result.getpixel((5, 5)) == (255, 0, 0, 255)
    assert result.getpixel((30, 5)) == (0, 0, 0, 0)


def test_noise_too_large_as_png_becomes_jpeg_within_the_limit() -> None:
    size = (1300, 880)
    noise = Image.frombytes("RGBA", size, os.urandom(size[0] * size[1] * 4))
    out = io.BytesIO()
    noise.save(out, "PNG")
    assert len(out.getvalue()) > MAX_BYTES
    part = prepare_image(out.getvalue())
    assert part.mime_type == "image/jpeg"
    assert len(part.data) <= MAX_BYTES


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        image_bytes((200, 200), image_format="JPEG")[:300],  # truncated
        image_bytes((20, 20), image_format="TIFF"),  # a format not accepted
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
    ids=["empty", "text", "truncated", "tiff", "svg"],
)
def test_unreadable_input_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an image"):
        prepare_image(data)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = Image.new("1", (9000, 8000))  # 72 megapixels in a few kilobytes
    out = io.BytesIO()
    bomb.save(out, "PNG")
    assert len(out.getvalue()) < 100_000
    with pytest.raises(ValueError, match="too large"):
        prepare_image(out.getvalue())
