"""MEDIA_URL_TTL set and observed: the media URLs a server hands out open the file until the
expiry they carry, at most MEDIA_URL_TTL away, and are refused after it."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

from tests.media.conftest import ServerFactory, uploaded
from tests.media.samples import png_bytes

TTL = 2


async def test_a_media_url_lives_media_url_ttl_seconds(media_server: ServerFactory) -> None:
    async with media_server(media_url_ttl=TTL) as served:
        alice = await served.sign_up(3801, "Alice")
        signed_at = time.time()
        item = await uploaded(alice, png_bytes())
        expires = int(parse_qs(urlsplit(item["url"]).query)["exp"][0])
        assert signed_at < expires <= time.time() + TTL
        assert (await served.client.get(item["url"])).status_code == 200
        await asyncio.sleep(expires + 1 - time.time())  # the clock must pass the expiry
        response = await served.client.get(item["url"])
    assert response.status_code == 403
    assert response.json()["code"] == "media_url_expired"
