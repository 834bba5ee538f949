"""Signed media URLs: what an <img> or <audio> tag, which cannot send headers, loads a file with.

The signature is HMAC-SHA256 with the app's secret key over "media:{id}:{exp}".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from core.errors import Forbidden

# Expiries are rounded up to this step so that one file keeps one URL for a while and the
# browser's cache can serve it.
EXPIRY_STEP = 3600


@dataclass(frozen=True, slots=True)
class MediaUrlSigner:
    secret_key: str
    ttl: int

    def signature(self, media_id: int, expires: int) -> str:
        message = f"media:{media_id}:{expires}".encode()
        digest = hmac.new(self.secret_key.encode(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def expiry(self, *, now: float | None = None) -> int:
        """The expiry URLs signed now carry: at least `ttl` seconds away, rounded up to a step."""
        now = time.time() if now is None else now
        step = min(EXPIRY_STEP, self.ttl)
        return (int(now) + self.ttl + step - 1) // step * step

    def sign(self, media_id: int, *, now: float | None = None) -> tuple[int, str]:
        """An expiry at least `ttl` seconds away and its signature."""
        expires = self.expiry(now=now)
        return expires, self.signature(media_id, expires)

    def verify(
        self, media_id: int, expires: str | None, signature: str | None, *, now: float | None = None
    ) -> None:
        """Raises 403 unless the signature is ours and has not expired."""
        if not expires or len(expires) > 12 or not (expires.isascii() and expires.isdigit()):
            raise _invalid()
        expected = self.signature(media_id, int(expires)).encode()
        if not signature or not hmac.compare_digest(expected, signature.encode()):
            raise _invalid()
        if int(expires) < (time.time() if now is None else now):
            raise Forbidden("This media link has expired", code="media_url_expired")


def _invalid() -> Forbidden:
    return Forbidden("This media link is not valid", code="media_signature_invalid")
