from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.settings import Settings
from core.signing import MediaUrlSigner, media_path
from tests.conftest import TEST_SECRET_KEY
from tests.media.conftest import ServerFactory, attach, uploaded
from tests.media.samples import png_bytes, wav_bytes
from tests.support.api import ApiUser
from tests.support.telegram import init_data_for


async def sent_in_chat(
    sender: ApiUser, *members: ApiUser
) -> tuple[dict[str, object], dict[str, object]]:
    """An upload of `sender`, shown in a message of a new group with `members`."""
    item = await uploaded(sender, png_bytes(), "shared.png")
    chat = await sender.create_group("Photos", *members)
    message = await attach(sender, chat["id"], [item["id"]], "look")
    return item, message


async def test_the_uploader_downloads_with_the_auth_header(alice: ApiUser) -> None:
    data = png_bytes()
    item = await uploaded(alice, data, "me.png")
    response = await alice.get(f"/api/v1/media/{item['id']}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"].startswith("private")
    assert response.headers["content-disposition"] == (
        "inline; filename=\"me.png\"; filename*=UTF-8''me.png"
    )


async def test_the_uploader_downloads_with_a_bearer_token(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    item = await uploaded(alice, png_bytes())
    tokens = (
        await client.post("/api/v1/auth/telegram", json={"init_data": init_data_for(201, "Alice")})
    ).json()
    response = await client.get(
        f"/api/v1/media/{item['id']}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 200


async def test_someone_else_cannot_fetch_an_unsent_upload(alice: ApiUser, bob: ApiUser) -> None:
    item = await uploaded(alice, png_bytes())
    response = await bob.get(f"/api/v1/media/{item['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "media_not_found"
    assert (await bob.get(f"/api/v1/media/{item['id']}/thumbnail")).status_code == 404


async def test_members_of_the_chat_it_was_sent_in_may_fetch_it_and_no_one_else(
    alice: ApiUser,
    bob: ApiUser,
    carol: ApiUser,
) -> None:
    item, _ = await sent_in_chat(alice, bob)
    assert (await bob.get(f"/api/v1/media/{item['id']}")).status_code == 200
    assert (await bob.get(f"/api/v1/media/{item['id']}/thumbnail")).status_code == 200
    assert (await carol.get(f"/api/v1/media/{item['id']}")).status_code == 404


async def test_a_deleted_message_no_longer_shares_its_media(alice: ApiUser, bob: ApiUser) -> None:
    item, message = await sent_in_chat(alice, bob)
    await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    assert (await bob.get(f"/api/v1/media/{item['id']}")).status_code == 404
    assert (await alice.get(f"/api/v1/media/{item['id']}")).status_code == 200


async def test_a_member_who_left_can_no_longer_fetch_it(alice: ApiUser, bob: ApiUser) -> None:
    item = await uploaded(alice, png_bytes())
    chat = await alice.create_group("Trip", bob)
    await attach(alice, chat["id"], [item["id"]], "photo")
    await bob.ok("POST", f"/api/v1/chats/{chat['id']}/leave")
    assert (await bob.get(f"/api/v1/media/{item['id']}")).status_code == 404


async def test_an_unknown_media_id_is_404(alice: ApiUser) -> None:
    assert (await alice.get("/api/v1/media/987654")).status_code == 404


async def test_a_signed_url_loads_without_headers(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    data = png_bytes()
    item = await uploaded(alice, data)
    response = await client.get(item["url"])
    assert response.status_code == 200
    assert response.content == data


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?" + "&".join(f"{key}={value}" for key, value in query.items())


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url, sig, exp: _with_query(url, sig=sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")),
        lambda url, sig, exp: _with_query(url, exp=str(int(exp) + 3600)),
        lambda url, sig, exp: _with_query(url, exp="1e9"),
        lambda url, sig, exp: urlsplit(url).path,
        lambda url, sig, exp: _with_query(url, sig="ä" * 43),
    ],
    ids=["signature", "expiry", "malformed-expiry", "unsigned", "non-ascii"],
)
async def test_a_tampered_signed_url_is_403(
    alice: ApiUser, client: httpx.AsyncClient, tamper: Callable[[str, str, str], str]
) -> None:
    item = await uploaded(alice, png_bytes())
    query = parse_qs(urlsplit(item["url"]).query)
    url = tamper(item["url"], query["sig"][0], query["exp"][0])
    response = await client.get(url)
    assert response.status_code == 403
    assert response.json()["code"] == "media_signature_invalid"


async def test_a_signature_for_one_media_does_not_open_another(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    first = await uploaded(alice, png_bytes(color=(1, 2, 3)))
    second = await uploaded(alice, png_bytes(color=(4, 5, 6)))
    query = urlsplit(first["url"]).query
    response = await client.get(f"/media/{second['id']}?{query}")
    assert response.status_code == 403


async def test_an_expired_signed_url_is_403(
    alice: ApiUser, client: httpx.AsyncClient, settings: Settings
) -> None:
    item = await uploaded(alice, png_bytes())
    signer = MediaUrlSigner(TEST_SECRET_KEY, settings.media_url_ttl)
    expires, signature = signer.sign(
        media_path(item["id"]), now=time.time() - 2 * settings.media_url_ttl
    )
    response = await client.get(f"/media/{item['id']}?exp={expires}&sig={signature}")
    assert response.status_code == 403
    assert response.json()["code"] == "media_url_expired"


async def test_a_photo_signature_does_not_open_its_thumbnail_nor_the_other_way_round(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    item = await uploaded(alice, png_bytes(), "photo.png")
    photo, thumbnail = urlsplit(item["url"]), urlsplit(item["thumbnail_url"])
    assert (await client.get(item["url"])).status_code == 200
    assert (await client.get(item["thumbnail_url"])).status_code == 200
    for path, query in ((thumbnail.path, photo.query), (photo.path, thumbnail.query)):
        response = await client.get(f"{path}?{query}")
        assert response.status_code == 403
        assert response.json()["code"] == "media_signature_invalid"


async def test_urls_expire_within_media_url_ttl(media_server: ServerFactory) -> None:
    async with media_server(media_url_ttl=120) as served:
        alice = await served.sign_up(211, "Alice")
        before = time.time()
        item = await uploaded(alice, png_bytes(), "photo.png")
        for url in (item["url"], item["thumbnail_url"]):
            expires = int(parse_qs(urlsplit(url).query)["exp"][0])
            assert before + 90 - 1 <= expires <= time.time() + 120


async def test_range_requests_get_partial_content(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    data = wav_bytes(1.0)
    size = len(data)
    item = await uploaded(alice, data, "song.wav")
    url = item["url"]

    first = await client.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.headers["content-length"] == "100"
    assert first.headers["content-type"] == "audio/wav"
    assert first.headers["content-disposition"].startswith("inline;")

    rest = await client.get(url, headers={"Range": "bytes=100-"})
    assert (rest.status_code, rest.content) == (206, data[100:])
    assert rest.headers["content-range"] == f"bytes 100-{size - 1}/{size}"

    tail = await client.get(url, headers={"Range": "bytes=-50"})
    assert (tail.status_code, tail.content) == (206, data[-50:])

    past_the_end = await client.get(url, headers={"Range": "bytes=10-999999999"})
    assert (past_the_end.status_code, past_the_end.content) == (206, data[10:])


async def test_an_unsatisfiable_range_is_416(alice: ApiUser, client: httpx.AsyncClient) -> None:
    data = wav_bytes(0.1)
    item = await uploaded(alice, data, "short.wav")
    response = await client.get(item["url"], headers={"Range": f"bytes={len(data)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=x-"])
async def test_other_ranges_get_the_whole_file(
    alice: ApiUser, client: httpx.AsyncClient, header: str
) -> None:
    data = wav_bytes(0.1)
    item = await uploaded(alice, data, "short.wav")
    response = await client.get(item["url"], headers={"Range": header})
    assert (response.status_code, response.content) == (200, data)


async def test_a_stale_if_range_gets_the_whole_file(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    data = wav_bytes(0.1)
    item = await uploaded(alice, data)
    response = await client.get(item["url"], headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (response.status_code, response.content) == (200, data)


async def test_a_cached_copy_is_revalidated_by_etag(
    alice: ApiUser, client: httpx.AsyncClient
) -> None:
    item = await uploaded(alice, png_bytes())
    first = await client.get(item["url"])
    again = await client.get(item["url"], headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_audio_has_no_thumbnail(alice: ApiUser) -> None:
    item = await uploaded(alice, wav_bytes())
    response = await alice.get(f"/api/v1/media/{item['id']}/thumbnail")
    assert response.status_code == 404
