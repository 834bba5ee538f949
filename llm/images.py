"""Images made fit for the vendors: decoded safely, within their size limits, without metadata.

`prepare_image` is CPU work (tens of milliseconds for a phone photo): callers run it in a thread.
It raises `ValueError`, with a message a user can read, for input that is no image it can read
or is too large to decode safely; a caller turns that into its own refusal (a 4xx, a bot reply).
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps

from llm.base import ImagePart

# Formats accepted from users; anything else is refused before decoding.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
# The bound both vendors take without scaling again: Anthropic's long side and pixel count
# (OpenAI fits 2048 px, then 768 px on the short side, which this already is near).
MAX_SIDE = 1568
MAX_PIXELS = 1_150_000
# Anthropic's 5 MB applies to the base64 text.
MAX_BYTES = 5 * 1024 * 1024 * 3 // 4
# A larger source is refused rather than decoded (a decompression bomb, or memory for nothing).
MAX_SOURCE_PIXELS = 64_000_000
JPEG_QUALITY = 85

# Pillow raises these for input it cannot decode (SyntaxError and EOFError from some plugins).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def fitted_size(width: int, height: int) -> tuple[int, int]:
    """The largest size of the same proportions within MAX_SIDE and MAX_PIXELS."""
    scale = min(1.0, MAX_SIDE / max(width, height), math.sqrt(MAX_PIXELS / (width * height)))
    # The epsilon keeps 1568 from becoming 1567.9999 and then 1567.
    return max(1, math.floor(width * scale + 1e-9)), max(1, math.floor(height * scale + 1e-9))


def prepare_image(data: bytes) -> ImagePart:
    """The image upright (EXIF orientation applied), scaled down to the vendors' limits, as JPEG,
    or PNG when it has transparency, with no metadata."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as source:
            width, height = source.size
            if width * height > MAX_SOURCE_PIXELS:
                raise ValueError(
                    f"The image is too large ({width}x{height}); "
                    f"at most {MAX_SOURCE_PIXELS // 1_000_000} megapixels"
                )
            source.draft(None, fitted_size(width, height))  # JPEG: decode at a reduced scale
            source.load()
            image = ImageOps.exif_transpose(source)  # the first frame of an animation
    except ValueError:
        raise
    except _DECODE_ERRORS as exc:
        raise ValueError(
            "The file is not an image (JPEG, PNG, WebP, GIF or BMP) we can read"
        ) from exc
    transparent = _has_transparency(image)
    image = image.convert("RGBA" if transparent else "RGB")
    size = fitted_size(*image.size)
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    if transparent:
        png = _encode(image, "PNG")
        if len(png) <= MAX_BYTES:
            return ImagePart(png, "image/png")
        # Only noise-like images are this large as PNG: flatten them onto white.
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    return ImagePart(_encode(image, "JPEG"), "image/jpeg")


def _has_transparency(image: Image.Image) -> bool:
    if image.mode == "P":
        return "transparency" in image.info
    if "A" not in image.getbands():
        return False
    low, _ = image.getchannel("A").getextrema()
    return bool(low != 255)  # an alpha channel all opaque (a screenshot) is no transparency


def _encode(image: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    if image_format == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(out, "PNG")
    return out.getvalue()
