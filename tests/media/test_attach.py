from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from core.signing import media_urls
from models import Message, MessageType
from services.views.media import aeon_media_fields, media_fields
from tests.conftest import TEST_SECRET_KEY
from tests.media.conftest import attach, send_media, uploaded
from tests.media.samples import iso_media, mp3_bytes, png_bytes, wav_bytes
from tests.support.api import ApiUser


async def new_chat(user: ApiUser, *members: ApiUser) -> int:
    chat: dict[str, Any] = await user.create_group("Media", *members)
    return int(chat["id"])


async def attach_error(user: ApiUser, chat_id: int, ids: list[int]) -> tuple[int, str]:
    """The status and code of a refused send, which left no message behind."""
    before = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    response = await send_media(user, chat_id, ids)
    assert await user.ok("GET", f"/api/v1/chats/{chat_id}/messages") == before
    return response.status_code, response.json()["code"]


async def test_one_item_gives_the_message_its_kind(alice: ApiUser) -> None:
    voice = await uploaded(alice, wav_bytes(), kind="voice")
    message = await attach(alice, await new_chat(alice), [voice["id"]])
    assert message["message_type"] == MessageType.VOICE


async def test_several_photos_and_videos_are_an_album(alice: ApiUser) -> None:
    photo = await uploaded(alice, png_bytes())
    video = await uploaded(alice, iso_media(b"mp42"))
    message = await attach(alice, await new_chat(alice), [video["id"], photo["id"]])
    assert message["message_type"] == MessageType.ALBUM


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((png_bytes(), None), (mp3_bytes(), None)),
        ((wav_bytes(), "voice"), (wav_bytes(0.3), "voice")),
        ((png_bytes(), "document"), (png_bytes(color=(1, 1, 1)), None)),
    ],
    ids=["photo-and-audio", "voices", "document-and-photo"],
)
async def test_an_album_does_not_mix_kinds(
    alice: ApiUser,
    first: tuple[bytes, str | None],
    second: tuple[bytes, str | None],
) -> None:
    items = [await uploaded(alice, data, kind=kind) for data, kind in (first, second)]
    error = await attach_error(alice, await new_chat(alice), [i["id"] for i in items])
    assert error == (422, "album_mixed_media")


async def test_only_the_uploader_can_send_an_upload(alice: ApiUser, bob: ApiUser) -> None:
    item = await uploaded(alice, png_bytes())
    error = await attach_error(bob, await new_chat(bob, alice), [item["id"]])
    assert error == (404, "media_not_found")


async def test_an_upload_is_sent_once(alice: ApiUser) -> None:
    item = await uploaded(alice, png_bytes())
    chat_id = await new_chat(alice)
    await attach(alice, chat_id, [item["id"]])
    error = await attach_error(alice, chat_id, [item["id"]])
    assert error == (409, "media_already_attached")


@pytest.mark.parametrize(
    ("ids", "code"),
    [([1, 1], "media_ids_duplicate"), (list(range(1, 12)), "validation_error")],
)
async def test_malformed_media_ids_are_refused(alice: ApiUser, ids: list[int], code: str) -> None:
    error = await attach_error(alice, await new_chat(alice), ids)
    assert error == (422, code)


async def test_media_fields_load_every_message_in_album_order(
    alice: ApiUser,
    client: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    photos = [await uploaded(alice, png_bytes(color=(n, n, n)), f"{n}.png") for n in range(3)]
    song = await uploaded(alice, wav_bytes(0.5), "song.wav")
    chat_id = await new_chat(alice)
    order = [photos[2]["id"], photos[0]["id"], photos[1]["id"]]
    album = await attach(alice, chat_id, order)
    single = await attach(alice, chat_id, [song["id"]])
    plain = await alice.send(chat_id, "no media")
    extra = await uploaded(alice, png_bytes(color=(50, 50, 50)))
    deleted = await attach(alice, chat_id, [extra["id"]])
    await alice.ok("DELETE", f"/api/v1/messages/{deleted['id']}")
    urls = media_urls(settings, TEST_SECRET_KEY, f"{client.base_url}/")

    async with sessionmaker() as session:
        ids = [album["id"], single["id"], plain["id"], deleted["id"]]
        messages = list(await session.scalars(select(Message).where(Message.id.in_(ids))))
        fields = await media_fields(session, messages, urls)

    assert set(fields) == {album["id"], single["id"]}
    assert [view.id for view in fields[album["id"]]] == order
    [song_view] = fields[single["id"]]
    assert (song_view.kind, song_view.duration, song_view.filename) == ("audio", 0.5, "song.wav")
    assert song_view.url.startswith(f"{client.base_url}/media/{song['id']}?exp=")
    assert (await client.get(song_view.url)).content == wav_bytes(0.5)
    assert aeon_media_fields(fields[single["id"]]) == {
        "media_url": song_view.url,
        "media_type": "audio/wav",
        "media_size": song["size"],
        "media_duration": 1,
    }
    assert aeon_media_fields([])["media_url"] is None


async def test_a_forwarded_copy_shares_its_media_with_the_other_chat(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    item = await uploaded(alice, png_bytes())
    to_bob = await alice.private_chat_with(bob)
    photo = await alice.ok(
        "POST", f"/api/v1/chats/{to_bob['id']}/messages", json={"media_ids": [item["id"]]}
    )
    to_carol = await bob.private_chat_with(carol)

    copy = await bob.ok(
        "POST",
        "/api/v1/messages/forward",
        params={"message_id": photo["id"], "chat_id": to_carol["id"]},
    )

    assert (copy["message_type"], [media["id"] for media in copy["media"]]) == (
        "photo",
        [item["id"]],
    )
    [seen] = (await carol.ok("GET", f"/api/v1/chats/{to_carol['id']}/messages"))["messages"]
    assert [media["id"] for media in seen["media"]] == [item["id"]]
    assert (await carol.get(seen["media"][0]["url"])).content == png_bytes()


def test_urls_over_a_websocket_base_are_http(no_env_file: Path) -> None:
    settings = Settings(secret_key=TEST_SECRET_KEY)
    urls = media_urls(settings, TEST_SECRET_KEY, "wss://api.example.com/")
    assert urls.media(5).startswith("https://api.example.com/media/5?exp=")
    assert media_urls(settings, TEST_SECRET_KEY).thumbnail(5).startswith("/media/5/thumbnail?")
