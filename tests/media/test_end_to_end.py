"""Upload, send in a message, and the recipient's socket gets a new_message whose media URL
downloads the same bytes (without any header: as an <img> tag would)."""

from __future__ import annotations

import httpx

from tests.media.samples import png_bytes, wav_bytes
from tests.support.api import sign_up
from tests.support.server import LiveServer
from tests.support.ws import ws_user


async def test_a_photo_travels_from_upload_to_the_recipients_socket(
    client: httpx.AsyncClient, server: LiveServer
) -> None:
    alice = await sign_up(client, 1501, "Alice")
    bob = await sign_up(client, 1502, "Bob")
    chat = await alice.private_chat_with(bob)
    image = png_bytes()
    uploaded = await alice.ok(
        "POST", "/api/v1/media", files={"file": ("cat.png", image, "image/png")}
    )
    async with ws_user(server, 1502, "Bob") as bob_ws:
        sent = await alice.ok(
            "POST",
            f"/api/v1/chats/{chat['id']}/messages",
            json={"text": "look", "media_ids": [uploaded["id"]]},
        )
        frame = await bob_ws.wait_for("new_message")
    message = frame["message"]
    assert message["id"] == sent["id"]
    assert message["message_type"] == "photo"
    assert message["media_type"] == "image/png"
    assert message["media_size"] == len(image)
    assert [item["id"] for item in message["media"]] == [uploaded["id"]]
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        download = await anonymous.get(message["media_url"])
    assert download.status_code == 200
    assert download.content == image
    assert download.headers["content-type"] == "image/png"
    # A client that catches up later gets links signed at that time, not stored ones.
    events = await bob.ok("GET", f"/api/v1/chats/{chat['id']}/events")
    replayed = next(e for e in events["events"] if e["type"] == "new_message")["message"]
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        again = await anonymous.get(replayed["media"][0]["url"])
    assert again.content == image


async def test_voice_and_an_album_set_the_message_type(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, 1511, "Alice")
    bob = await sign_up(client, 1512, "Bob")
    chat = await alice.private_chat_with(bob)
    voice = await alice.ok(
        "POST",
        "/api/v1/media",
        files={"file": ("note.wav", wav_bytes(), "audio/wav")},
        data={"kind": "voice"},
    )
    voice_message = await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/messages", json={"media_ids": [voice["id"]]}
    )
    assert voice_message["message_type"] == "voice"
    assert voice_message["media_duration"] is not None
    photos = [
        await alice.ok(
            "POST", "/api/v1/media", files={"file": (f"{i}.png", png_bytes(8 + i), "image/png")}
        )
        for i in range(2)
    ]
    album = await alice.ok(
        "POST",
        f"/api/v1/chats/{chat['id']}/messages",
        json={"media_ids": [p["id"] for p in photos]},
    )
    assert album["message_type"] == "album"
    history = await bob.ok("GET", f"/api/v1/chats/{chat['id']}/messages")
    assert [len(m["media"]) for m in history["messages"]] == [1, 2]
