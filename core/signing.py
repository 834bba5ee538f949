"""Signed media URLs: what an <img> or <audio> tag, which cannot send headers, loads a file with.

The signature is HMAC-SHA256 with the app's secret key over "media:{path}:{exp}": it opens that
one path (a photo's URL does not open its thumbnail, nor the other way round) until `exp`.

A signed URL is a bearer capability: whoever holds it loads the file until it expires, also after
the user who got it left the chat. So it lives at most `ttl` seconds. Within that bound the expiry
is a multiple of `ttl / 4` (the latest one no later than now + ttl), so a file keeps one URL for a
quarter of the TTL: browsers can cache it and a page that lists it keeps its ETag meanwhile, and
every URL handed out is still good for at least three quarters of the TTL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, replace

from core.errors import Forbidden
from core.settings import Settings

EXPIRY_BUCKETS_PER_TTL = 4


def media_path(media_id: int, *, thumbnail: bool = False) -> str:
    """The path a signed URL opens (served under /media)."""
    return f"/media/{media_id}/thumbnail" if thumbnail else f"/media/{media_id}"


@dataclass(frozen=True, slots=True)
class MediaUrlSigner:
    secret_key: str
    ttl: int

    def signature(self, path: str, expires: int) -> str:
        message = f"media:{path}:{expires}".encode()
        digest = hmac.new(self.secret_key.encode(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @property
    def step(self) -> int:
        """How long one URL stays the same: a quarter of the TTL (at least a second)."""
        return max(1, self.ttl // EXPIRY_BUCKETS_PER_TTL)

    def expiry(self, *, now: float | None = None) -> int:
        """The expiry URLs signed now carry: between 3/4 of `ttl` and `ttl` seconds away, the
        same for every URL signed within one step."""
        now = time.time() if now is None else now
        return (int(now) + self.ttl) // self.step * self.step

    def sign(self, path: str, *, now: float | None = None) -> tuple[int, str]:
        """The expiry and the signature of a URL for `path` signed now."""
        expires = self.expiry(now=now)
        return expires, self.signature(path, expires)

    def verify(
        self, path: str, expires: str | None, signature: str | None, *, now: float | None = None
    ) -> None:
        """Raises 403 unless the signature is ours for this path and has not expired."""
        if not expires or len(expires) > 12 or not (expires.isascii() and expires.isdigit()):
            raise _invalid()
        expected = self.signature(path, int(expires)).encode()
        if not signature or not hmac.compare_digest(expected, signature.encode()):
            raise _invalid()
        if int(expires) < (time.time() if now is None else now):
            raise Forbidden("This media link has expired", code="media_url_expired")


@dataclass(frozen=True, slots=True)
class MediaUrls:
    """Signed, absolute URLs (relative when no base URL is known), signed at `now` when it is
    set (see `pinned`), else at the moment each URL is made."""

    signer: MediaUrlSigner
    base_url: str
    now: float | None = None

    def pinned(self) -> MediaUrls:
        """These URLs, all signed at this moment: a page that names its expiry in its ETag and
        then lists the URLs lists URLs with that expiry, even when a step ends in between."""
        return replace(self, now=time.time())

    @property
    def expiry(self) -> int:
        return self.signer.expiry(now=self.now)

    def _signed(self, path: str) -> str:
        expires, signature = self.signer.sign(path, now=self.now)
        return f"{self.base_url}{path}?exp={expires}&sig={signature}"

    def media(self, media_id: int) -> str:
        return self._signed(media_path(media_id))

    def thumbnail(self, media_id: int) -> str:
        return self._signed(media_path(media_id, thumbnail=True))


def media_urls(settings: Settings, secret_key: str, base_url: str | None = None) -> MediaUrls:
    """URLs under PUBLIC_BASE_URL, else under `base_url` (the request's; a WebSocket's works)."""
    base = settings.public_base_url or (base_url or "").rstrip("/")
    for socket_scheme, http_scheme in (("ws://", "http://"), ("wss://", "https://")):
        if base.startswith(socket_scheme):
            base = http_scheme + base[len(socket_scheme) :]
    return MediaUrls(MediaUrlSigner(secret_key, settings.media_url_ttl), base)


def _invalid() -> Forbidden:
    return Forbidden("This media link is not valid", code="media_signature_invalid")
