"""The Aeon contract (../shared/AEON_COMPAT.md), checked against a live server.

Written from the contract alone: the shapes below are plain tables of JSON types, not our
schemas. Every Aeon route is called as Aeon's React client calls it (axios JSON bodies, its
trailing slashes, the lower-case `x-telegram-init-data` header), on answers that exercise each
optional field: a chat with no message, a text message, a media-only message, after a delete.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.media.samples import png_bytes, wav_bytes
from tests.support.telegram import init_data_for

# A field's type: "int", "bool", "str", "dt" (ISO 8601 with an offset), "list"; a trailing "?"
# allows null. A dict is an object with those fields; a one-item list is a list of that.
Shape = str | dict[str, Any] | list[Any]

SENDER: dict[str, Shape] = {
    "id": "int",
    "telegram_id": "int",
    "username": "str?",
    "first_name": "str",
    "last_name": "str?",
    "profile_photo_url": "str?",
}
ME: dict[str, Shape] = {
    **SENDER,
    "language_code": "str?",
    "is_premium": "bool",
    "is_admin": "bool",
    "bio": "str?",
    "is_active": "bool",
    "created_at": "dt",
    "updated_at": "dt?",
    "subordinates": "list",
    "managers": "list",
}
MEMBER: dict[str, Shape] = {**SENDER, "is_admin": "bool", "joined_at": "dt"}
CHAT: dict[str, Shape] = {
    "id": "int",
    "title": "str?",
    "chat_type": "str",
    "description": "str?",
    "photo_url": "str?",
    "created_by": "int",
    "is_active": "bool",
    "created_at": "dt",
    "updated_at": "dt?",
    "members": [MEMBER],
}
CHAT_LIST_ITEM: dict[str, Shape] = {
    "id": "int",
    "title": "str?",
    "chat_type": "str",
    "photo_url": "str?",
    "last_message": "str?",
    "last_message_time": "dt?",
    "unread_count": "int",
}
MESSAGE: dict[str, Shape] = {
    "id": "int",
    "chat_id": "int",
    "sender_id": "int",
    "sender": SENDER,
    "text": "str?",
    "message_type": "str",
    "reply_to_message_id": "int?",
    "media_url": "str?",
    "media_type": "str?",
    "media_size": "int?",
    "media_duration": "int?",
    "forward_from_user_id": "int?",
    "forward_from_chat_id": "int?",
    "is_edited": "bool",
    "is_deleted": "bool",
    "read_by": ["int"],
    "created_at": "dt",
    "updated_at": "dt?",
}
MESSAGE_LIST: dict[str, Shape] = {
    "messages": [MESSAGE],
    "total": "int",
    "page": "int",
    "per_page": "int",
    "has_next": "bool",
    "has_prev": "bool",
}
HEALTH: dict[str, Shape] = {"status": "str", "database": "str", "version": "str"}
INVITE_RESULT: dict[str, Shape] = {"message": "str", "status": "str"}
UPLOADED: dict[str, Shape] = {
    "media_url": "str",
    "media_type": "str",
    "media_size": "int",
    "message_type": "str",
    "filename": "str",
}
ERROR: dict[str, Shape] = {"error": "str", "status_code": "int"}


TABLES = {
    "Sender": SENDER,
    "Me": ME,
    "Member": MEMBER,
    "Chat": CHAT,
    "ChatListItem": CHAT_LIST_ITEM,
    "Message": MESSAGE,
    "MessageList": MESSAGE_LIST,
    "Health": HEALTH,
    "InviteResult": INVITE_RESULT,
    "Uploaded": UPLOADED,
    "Error": ERROR,
}
_TABLE_NAMES = {id(table): name for name, table in TABLES.items()}


class Shapes:
    """Checks answers against the tables, and remembers which optional fields it has seen
    filled in (as "Table.field"), so that a test can show every one of them was exercised."""

    def __init__(self) -> None:
        self.filled: set[str] = set()

    def check(self, value: Any, shape: Shape, where: str) -> None:
        if isinstance(shape, dict):
            assert isinstance(value, dict), f"{where}: {value!r} is not an object"
            missing = shape.keys() - value.keys()
            assert not missing, f"{where}: missing {sorted(missing)}"
            table = _TABLE_NAMES[id(shape)]
            for name, field_shape in shape.items():
                if value[name] is not None:
                    self.filled.add(f"{table}.{name}")
                self.check(value[name], field_shape, f"{where}.{name}")
        elif isinstance(shape, list):
            assert isinstance(value, list), f"{where}: {value!r} is not a list"
            for index, item in enumerate(value):
                self.check(item, shape[0], f"{where}[{index}]")
        else:
            _check_scalar(value, shape, where)


def _check_scalar(value: Any, shape: str, where: str) -> None:
    kind = shape.rstrip("?")
    if value is None:
        assert shape.endswith("?"), f"{where}: null where {kind} is required"
    elif kind == "int":
        assert type(value) is int, f"{where}: {value!r} is not an integer"
    elif kind == "bool":
        assert type(value) is bool, f"{where}: {value!r} is not a boolean"
    elif kind == "str":
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
    elif kind == "list":
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
    else:
        assert kind == "dt", shape
        assert isinstance(value, str), f"{where}: {value!r} is not a datetime string"
        moment = datetime.fromisoformat(value)
        assert moment.utcoffset() is not None, f"{where}: {value!r} has no UTC offset"


class AeonAxios:
    """Requests as Aeon's client sends them with axios: JSON bodies it serialises itself, its
    own paths (slashes included), the init data header in lower case."""

    def __init__(self, client: httpx.AsyncClient, telegram_id: int, first_name: str, **user: Any):
        self.client = client
        self.init_data = init_data_for(telegram_id, first_name, **user)

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {
            "accept": "application/json, text/plain, */*",
            "x-telegram-init-data": self.init_data,
        }
        if body is not None:
            headers["content-type"] = "application/json"
            kwargs["content"] = json.dumps(body)
        response = await self.client.request(method, path, headers=headers, **kwargs)
        assert not response.is_redirect, (method, path)
        return response

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = await self.call(method, path, body, **kwargs)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        return response.json()


@pytest.fixture
def shapes() -> Shapes:
    return Shapes()


async def _media_message(
    user: AeonAxios, shapes: Shapes, chat_id: int, upload: dict[str, Any]
) -> dict[str, Any]:
    response = await user.call("POST", "/api/v1/media", files=upload)
    assert response.status_code == 200, response.text
    message: dict[str, Any] = await user.ok(
        "POST", "/api/v1/messages/", {"chat_id": chat_id, "media_ids": [response.json()["id"]]}
    )
    shapes.check(message, MESSAGE, "Message")
    return message


async def test_every_aeon_route_answers_in_the_contracts_shapes(
    client: httpx.AsyncClient, shapes: Shapes
) -> None:
    alice = AeonAxios(
        client,
        5001,
        "Alice",
        username="alice",
        last_name="Liddell",
        language_code="en",
        photo_url="https://t.me/i/userpic/alice.jpg",
    )
    bob = AeonAxios(client, 5002, "Bob", username="bob", language_code=None)
    carol = AeonAxios(client, 5003, "Carol", username="carol")

    shapes.check(await alice.ok("GET", "/api/v1/health"), HEALTH, "Health")
    me = await alice.ok("GET", "/api/v1/me")
    shapes.check(me, ME, "Me")
    assert (me["subordinates"], me["managers"], me["is_active"]) == ([], [], True)
    await alice.ok("PATCH", "/api/v1/me", {"bio": "Down the rabbit hole"})
    shapes.check(await alice.ok("GET", "/api/v1/me"), ME, "Me")
    bob_me = await bob.ok("GET", "/api/v1/me")
    shapes.check(bob_me, ME, "Me")

    # A chat with no message.
    chat = await alice.ok(
        "POST",
        "/api/v1/chats/",
        {
            "title": "Tea party",
            "chat_type": "group",
            "description": "Every day at six",
            "photo_url": "https://example.org/tea.png",
            "member_ids": [bob_me["id"]],
        },
    )
    shapes.check(chat, CHAT, "Chat")
    chat_id = chat["id"]
    (item,) = await bob.ok("GET", "/api/v1/chats/")
    shapes.check(item, CHAT_LIST_ITEM, "ChatListItem")
    assert (item["last_message"], item["last_message_time"]) == (None, None)
    shapes.check(await bob.ok("GET", f"/api/v1/chats/{chat_id}"), CHAT, "Chat")
    shapes.check(
        await alice.ok("PUT", f"/api/v1/chats/{chat_id}", {"title": "Mad tea party"}),
        CHAT,
        "Chat",
    )
    empty = await bob.ok("GET", f"/api/v1/messages/chat/{chat_id}?page=1&per_page=50")
    shapes.check(empty, MESSAGE_LIST, "MessageList")

    # A text message, a reply, an edit, reads.
    text = await alice.ok(
        "POST", "/api/v1/messages/", {"chat_id": chat_id, "text": "Tea?", "message_type": "text"}
    )
    shapes.check(text, MESSAGE, "Message")
    reply = await bob.ok(
        "POST",
        "/api/v1/messages/",
        {"chat_id": chat_id, "text": "Yes", "reply_to_message_id": text["id"]},
    )
    shapes.check(reply, MESSAGE, "Message")
    shapes.check(
        await bob.ok("PUT", f"/api/v1/messages/{reply['id']}", {"text": "Yes please"}),
        MESSAGE,
        "Message",
    )
    assert isinstance(await bob.ok("POST", f"/api/v1/messages/{text['id']}/read"), dict)
    assert isinstance(await alice.ok("POST", f"/api/v1/messages/chat/{chat_id}/read-all"), dict)
    (item,) = await alice.ok("GET", "/api/v1/chats/")
    shapes.check(item, CHAT_LIST_ITEM, "ChatListItem")
    assert item["last_message"] == "Yes please"

    # Media-only messages: an uploaded photo and a voice note.
    uploaded = await alice.ok(
        "POST",
        "/api/v1/messages/upload-media",
        files={"file": ("cake.png", png_bytes(), "image/png")},
    )
    shapes.check(uploaded, UPLOADED, "Uploaded")
    assert uploaded["media_url"].startswith("http")
    await _media_message(
        alice, shapes, chat_id, {"file": ("note.wav", wav_bytes(1.5), "audio/wav")}
    )
    photo = await _media_message(
        alice, shapes, chat_id, {"file": ("cake.png", png_bytes(), "image/png")}
    )
    (item,) = await bob.ok("GET", "/api/v1/chats/")
    shapes.check(item, CHAT_LIST_ITEM, "ChatListItem")
    assert item["last_message"] == "Photo"
    page = await bob.ok("GET", f"/api/v1/messages/chat/{chat_id}?page=1&per_page=50")
    shapes.check(page, MESSAGE_LIST, "MessageList")

    # Forward, then a delete.
    private = await bob.ok(
        "POST", "/api/v1/chats/", {"chat_type": "private", "member_ids": [me["id"]]}
    )
    shapes.check(private, CHAT, "Chat")
    forwarded = await bob.ok(
        "POST", f"/api/v1/messages/forward?message_id={text['id']}&chat_id={private['id']}"
    )
    shapes.check(forwarded, MESSAGE, "Message")
    deleted = await alice.ok("DELETE", f"/api/v1/messages/{photo['id']}")
    shapes.check(deleted, MESSAGE, "Message")
    for item in await bob.ok("GET", "/api/v1/chats/"):
        shapes.check(item, CHAT_LIST_ITEM, "ChatListItem")
    shapes.check(
        await bob.ok("GET", f"/api/v1/messages/chat/{chat_id}?page=1&per_page=50"),
        MESSAGE_LIST,
        "MessageList",
    )

    # Members and invitations.
    carol_me = await carol.ok("GET", "/api/v1/me")
    shapes.check(
        await alice.ok("POST", f"/api/v1/chats/{chat_id}/members/{carol_me['id']}"), CHAT, "Chat"
    )
    assert isinstance(
        await alice.ok("DELETE", f"/api/v1/chats/{chat_id}/members/{carol_me['id']}"), dict
    )
    for username in ("@carol", "dormouse"):
        shapes.check(
            await alice.ok(
                "POST", f"/api/v1/chats/{chat_id}/invite-by-username", {"username": username}
            ),
            INVITE_RESULT,
            "InviteResult",
        )
    shapes.check(await carol.ok("POST", "/api/v1/users/check-invitations"), ME, "Me")
    assert isinstance(await alice.ok("DELETE", f"/api/v1/chats/{chat_id}"), dict)

    # Errors.
    for response in (
        await carol.call("GET", f"/api/v1/chats/{chat_id}"),
        await client.get("/api/v1/chats/"),
        await bob.call("POST", "/api/v1/messages/", {"chat_id": "x"}),
    ):
        assert response.status_code in (401, 404, 422)
        shapes.check(response.json(), ERROR, "Error")

    # Every optional field of the shapes was seen filled in, so its type was checked.
    optional = {
        f"{name}.{field}"
        for name, table in TABLES.items()
        for field, shape in table.items()
        if isinstance(shape, str) and shape.endswith("?")
    }
    assert sorted(optional - shapes.filled) == []


async def test_creating_chats_the_way_the_client_does(
    client: httpx.AsyncClient, shapes: Shapes
) -> None:
    alice = AeonAxios(client, 5101, "Alice", username="alice")
    bob = AeonAxios(client, 5102, "Bob", username="bob")
    bob_id = (await bob.ok("GET", "/api/v1/me"))["id"]
    # The members field left empty: the creator's own chat, with the title given.
    saved = await alice.ok(
        "POST", "/api/v1/chats/", {"title": "Notes", "chat_type": "private", "member_ids": []}
    )
    shapes.check(saved, CHAT, "Chat")
    assert (saved["title"], len(saved["members"]), saved["skipped_member_ids"]) == (
        "Notes",
        1,
        [],
    )
    # Someone typed a Telegram id, as the client's hint asks: skipped, the chat is made.
    group = await alice.ok(
        "POST",
        "/api/v1/chats/",
        {"title": None, "chat_type": "group", "member_ids": [5102, bob_id]},
    )
    shapes.check(group, CHAT, "Chat")
    assert group["skipped_member_ids"] == [5102]
    assert group["title"] == "Bob"
    listed = await alice.ok("GET", "/api/v1/chats/")
    for item in listed:
        shapes.check(item, CHAT_LIST_ITEM, "ChatListItem")
    assert {item["id"] for item in listed} == {saved["id"], group["id"]}


async def test_deleted_messages_are_gone_from_the_pages_and_the_list(
    client: httpx.AsyncClient, shapes: Shapes
) -> None:
    alice = AeonAxios(client, 5201, "Alice", username="alice")
    chat = await alice.ok("POST", "/api/v1/chats/", {"title": "Me", "chat_type": "group"})
    sent = [
        await alice.ok("POST", "/api/v1/messages/", {"chat_id": chat["id"], "text": text})
        for text in ("one", "two", "three")
    ]
    await alice.ok("DELETE", f"/api/v1/messages/{sent[2]['id']}")
    page = await alice.ok("GET", f"/api/v1/messages/chat/{chat['id']}?page=1&per_page=50")
    shapes.check(page, MESSAGE_LIST, "MessageList")
    assert [m["text"] for m in page["messages"]] == ["one", "two"]
    assert (page["total"], page["has_next"]) == (2, False)
    small = await alice.ok("GET", f"/api/v1/messages/chat/{chat['id']}?page=1&per_page=1")
    assert ([m["text"] for m in small["messages"]], small["total"], small["has_next"]) == (
        ["two"],
        2,
        True,
    )
    (item,) = await alice.ok("GET", "/api/v1/chats/")
    assert (item["last_message"], item["last_message_time"]) == ("two", sent[1]["created_at"])
    for message in sent[:2]:
        await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    (item,) = await alice.ok("GET", "/api/v1/chats/")
    shapes.check(item, CHAT_LIST_ITEM, "ChatListItem")
    assert (item["last_message"], item["last_message_time"]) == (None, None)
    page = await alice.ok("GET", f"/api/v1/messages/chat/{chat['id']}?page=1&per_page=50")
    assert (page["messages"], page["total"]) == ([], 0)


async def test_media_only_messages_read_as_text_in_the_list(client: httpx.AsyncClient) -> None:
    alice = AeonAxios(client, 5301, "Alice", username="alice")
    chat = await alice.ok("POST", "/api/v1/chats/", {"title": "Files", "chat_type": "group"})
    uploads = [
        ({"file": ("cake.png", png_bytes(), "image/png")}, None, "Photo"),
        ({"file": ("memo.wav", wav_bytes(), "audio/wav")}, "voice", "Voice message"),
        ({"file": ("song.wav", wav_bytes(), "audio/wav")}, "audio", "song.wav"),
        ({"file": ("report.bin", b"\x00\x01 plain bytes", "application/pdf")}, None, "report.bin"),
    ]
    for files, kind, summary in uploads:
        response = await alice.call(
            "POST", "/api/v1/media", files=files, data={"kind": kind} if kind else None
        )
        assert response.status_code == 200, response.text
        await alice.ok(
            "POST",
            "/api/v1/messages/",
            {"chat_id": chat["id"], "media_ids": [response.json()["id"]]},
        )
        (item,) = await alice.ok("GET", "/api/v1/chats/")
        assert item["last_message"] == summary


async def test_check_invitations_returns_me_and_joins_the_invited_chats(
    client: httpx.AsyncClient, shapes: Shapes
) -> None:
    alice = AeonAxios(client, 5401, "Alice", username="alice")
    chat = await alice.ok("POST", "/api/v1/chats/", {"title": "Club", "chat_type": "group"})
    invited = await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", {"username": "@dormouse"}
    )
    assert invited["status"] == "invited"
    dormouse = AeonAxios(client, 5402, "Dormouse", username="dormouse")
    me = await dormouse.ok("POST", "/api/v1/users/check-invitations")
    shapes.check(me, ME, "Me")
    assert me["username"] == "dormouse"
    assert [c["id"] for c in await dormouse.ok("GET", "/api/v1/chats/")] == [chat["id"]]


async def test_the_clients_polls_revalidate_to_304(client: httpx.AsyncClient) -> None:
    alice = AeonAxios(client, 5501, "Alice", username="alice")
    chat = await alice.ok("POST", "/api/v1/chats/", {"title": "Poll", "chat_type": "group"})
    await alice.ok("POST", "/api/v1/messages/", {"chat_id": chat["id"], "text": "hi"})
    for path in (
        "/api/v1/chats/",
        f"/api/v1/messages/chat/{chat['id']}?page=1&per_page=50",
        "/api/v1/me",
    ):
        first = await alice.call("GET", path)
        assert first.headers["cache-control"] == "private, no-cache"
        again = await alice.client.get(
            path,
            headers={
                "x-telegram-init-data": alice.init_data,
                "if-none-match": first.headers["etag"],
            },
        )
        assert (again.status_code, again.content) == (304, b"")


async def test_a_cors_preflight_allows_the_clients_header(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/v1/chats/",
        headers={
            "origin": "https://miniapp.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-telegram-init-data",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-telegram-init-data" in allowed
    assert response.headers["access-control-allow-origin"] == "https://miniapp.example"
