"""An Aeon Mini App client, end to end against a live server, using only Aeon's routes.

Every path is called both as written and with a trailing slash; neither may redirect.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import ApiUser, sign_up

ME_FIELDS = {
    "id",
    "telegram_id",
    "username",
    "first_name",
    "last_name",
    "language_code",
    "is_premium",
    "is_admin",
    "profile_photo_url",
    "bio",
    "created_at",
}
CHAT_LIST_ITEM_FIELDS = {
    "id",
    "title",
    "chat_type",
    "photo_url",
    "last_message",
    "last_message_time",
    "unread_count",
}
CHAT_FIELDS = {
    "id",
    "title",
    "chat_type",
    "description",
    "photo_url",
    "created_by",
    "is_active",
    "created_at",
    "updated_at",
    "members",
}
MEMBER_FIELDS = {
    "id",
    "telegram_id",
    "username",
    "first_name",
    "last_name",
    "profile_photo_url",
    "is_admin",
    "joined_at",
}
SENDER_FIELDS = {"id", "telegram_id", "username", "first_name", "last_name", "profile_photo_url"}
MESSAGE_FIELDS = {
    "id",
    "chat_id",
    "sender_id",
    "sender",
    "text",
    "message_type",
    "reply_to_message_id",
    "media_url",
    "media_type",
    "media_size",
    "media_duration",
    "forward_from_user_id",
    "forward_from_chat_id",
    "is_edited",
    "is_deleted",
    "read_by",
    "created_at",
    "updated_at",
}
MESSAGE_LIST_FIELDS = {"messages", "total", "page", "per_page", "has_next", "has_prev"}


class AeonClient:
    """Calls the API the way the Aeon Mini App does: initData header, Aeon's paths."""

    def __init__(self, user: ApiUser, slash: str) -> None:
        self.user = user
        self.slash = slash

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.user.request(method, path + self.slash, **kwargs)
        assert not response.is_redirect, (method, path, response.headers.get("location"))
        return response

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()


def _assert_message_shape(message: dict[str, Any]) -> None:
    assert message.keys() >= MESSAGE_FIELDS
    if message["sender"] is not None:
        assert message["sender"].keys() >= SENDER_FIELDS
    assert message["created_at"].endswith(("+00:00", "Z"))


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "trailing-slash"])
async def test_a_group_conversation_through_aeon_routes_only(
    client: httpx.AsyncClient, slash: str
) -> None:
    alice = AeonClient(ApiUser(client, 201, "Alice", "alice"), slash)
    bob = AeonClient(ApiUser(client, 202, "Bob", "bob"), slash)
    carol = AeonClient(ApiUser(client, 203, "Carol", "carol"), slash)

    me = await alice.ok("GET", "/api/v1/me")
    assert me.keys() >= ME_FIELDS
    bob_me = await bob.ok("GET", "/api/v1/me")

    # Create a group: the creator is its admin.
    chat = await alice.ok(
        "POST",
        "/api/v1/chats",
        json={"title": "Book club", "chat_type": "group", "description": "d", "member_ids": []},
    )
    assert chat.keys() >= CHAT_FIELDS
    assert (chat["chat_type"], chat["created_by"], chat["is_active"]) == ("group", me["id"], True)
    (creator,) = chat["members"]
    assert creator.keys() >= MEMBER_FIELDS
    assert (creator["id"], creator["is_admin"]) == (me["id"], True)
    chat_id = chat["id"]

    # Invite: a known user is added, an unknown one is invited and joins at first sign-in.
    added = await alice.ok(
        "POST", f"/api/v1/chats/{chat_id}/invite-by-username", json={"username": "@bob"}
    )
    assert added["status"] == "added"
    assert isinstance(added["message"], str)
    invited = await alice.ok(
        "POST", f"/api/v1/chats/{chat_id}/invite-by-username", json={"username": "carol"}
    )
    assert invited["status"] == "invited"
    carol_me = await carol.ok("GET", "/api/v1/me")
    members = (await alice.ok("GET", f"/api/v1/chats/{chat_id}"))["members"]
    assert [m["id"] for m in members] == [me["id"], bob_me["id"], carol_me["id"]]
    assert [m["is_admin"] for m in members] == [True, False, False]

    # Send.
    sent = []
    for text in ("one", "two", "three"):
        message = await alice.ok(
            "POST",
            "/api/v1/messages",
            json={"chat_id": chat_id, "text": text, "message_type": "text"},
        )
        _assert_message_shape(message)
        assert (message["text"], message["sender_id"], message["read_by"]) == (text, me["id"], [])
        sent.append(message)
    reply = await bob.ok(
        "POST",
        "/api/v1/messages",
        json={"chat_id": chat_id, "text": "agreed", "reply_to_message_id": sent[0]["id"]},
    )
    assert reply["reply_to_message_id"] == sent[0]["id"]

    # List: real unread counts and the last message.
    (item,) = await bob.ok("GET", "/api/v1/chats")
    assert item.keys() >= CHAT_LIST_ITEM_FIELDS
    assert (item["id"], item["title"], item["unread_count"]) == (chat_id, "Book club", 3)
    assert (item["last_message"], item["last_message_detail"]["id"]) == ("agreed", reply["id"])
    assert item["last_message_time"] == reply["created_at"]
    (carols_item,) = await carol.ok("GET", "/api/v1/chats")
    assert carols_item["unread_count"] == 4
    (alices_item,) = await alice.ok("GET", "/api/v1/chats")
    assert alices_item["unread_count"] == 1

    # Pages: page 1 holds the newest, oldest first within it; has_next means older exist.
    page = await bob.ok("GET", f"/api/v1/messages/chat/{chat_id}", params={"per_page": 2})
    assert page.keys() >= MESSAGE_LIST_FIELDS
    assert [m["text"] for m in page["messages"]] == ["three", "agreed"]
    assert (page["total"], page["page"], page["per_page"]) == (4, 1, 2)
    assert (page["has_next"], page["has_prev"]) == (True, False)
    older = await bob.ok(
        "GET", f"/api/v1/messages/chat/{chat_id}", params={"page": 2, "per_page": 2}
    )
    assert [m["text"] for m in older["messages"]] == ["one", "two"]
    assert (older["has_next"], older["has_prev"]) == (False, True)

    # Read: bob reads up to "two"; read_by comes from the markers.
    read = await bob.ok("POST", f"/api/v1/messages/{sent[1]['id']}/read")
    assert read["chat_id"] == chat_id
    (item,) = await bob.ok("GET", "/api/v1/chats")
    assert item["unread_count"] == 1
    history = await alice.ok("GET", f"/api/v1/messages/chat/{chat_id}")
    assert [(m["text"], m["read_by"]) for m in history["messages"]] == [
        ("one", [bob_me["id"]]),
        ("two", [bob_me["id"]]),
        ("three", []),
        ("agreed", []),
    ]
    await carol.ok("POST", f"/api/v1/messages/chat/{chat_id}/read-all")
    (carols_item,) = await carol.ok("GET", "/api/v1/chats")
    assert carols_item["unread_count"] == 0
    history = await alice.ok("GET", f"/api/v1/messages/chat/{chat_id}")
    assert history["messages"][-1]["read_by"] == [carol_me["id"]]

    # Edit and delete.
    edited = await alice.ok("PUT", f"/api/v1/messages/{sent[2]['id']}", json={"text": "3"})
    assert (edited["text"], edited["is_edited"]) == ("3", True)
    deleted = await alice.ok("DELETE", f"/api/v1/messages/{sent[2]['id']}")
    assert (deleted["text"], deleted["is_deleted"]) == (None, True)

    # Chat admin work.
    renamed = await alice.ok("PUT", f"/api/v1/chats/{chat_id}", json={"title": "Readers"})
    assert renamed["title"] == "Readers"
    await alice.ok("DELETE", f"/api/v1/chats/{chat_id}/members/{carol_me['id']}")
    assert (await carol.call("GET", f"/api/v1/chats/{chat_id}")).status_code == 404
    again = await alice.call("POST", f"/api/v1/chats/{chat_id}/members/{bob_me['id']}")
    assert again.status_code == 400
    assert again.json()["error"]
    await alice.ok("POST", f"/api/v1/chats/{chat_id}/members/{carol_me['id']}")

    # Forward into a private chat created the Aeon way.
    private = await bob.ok(
        "POST", "/api/v1/chats", json={"chat_type": "private", "member_ids": [carol_me["id"]]}
    )
    assert private["chat_type"] == "private"
    copy = await bob.ok(
        "POST",
        "/api/v1/messages/forward",
        params={"message_id": sent[0]["id"], "chat_id": private["id"]},
    )
    _assert_message_shape(copy)
    assert (copy["forward_from_user_id"], copy["forward_from_chat_id"]) == (me["id"], chat_id)
    listed = await carol.ok("GET", "/api/v1/chats")
    assert [c["id"] for c in listed] == [private["id"], chat_id]
    assert listed[0]["unread_count"] == 1

    # Leave, then the creator deletes the chat.
    await bob.ok("DELETE", f"/api/v1/chats/{chat_id}/members/{bob_me['id']}")
    assert [c["id"] for c in await bob.ok("GET", "/api/v1/chats")] == [private["id"]]
    await alice.ok("DELETE", f"/api/v1/chats/{chat_id}")
    assert await alice.ok("GET", "/api/v1/chats") == []
    gone = await carol.call("GET", f"/api/v1/messages/chat/{chat_id}")
    assert gone.status_code == 404
    assert (gone.json()["error"], gone.json()["status_code"]) == ("Chat not found", 404)


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"per_page": 0}, {"per_page": 101}], ids=["page-0", "pp-0", "pp-101"]
)
async def test_aeon_page_parameters_are_checked(
    client: httpx.AsyncClient, params: dict[str, int]
) -> None:
    alice = await sign_up(client, 201, "Alice", "alice")
    chat = await alice.create_group("Team")
    response = await alice.get(f"/api/v1/messages/chat/{chat['id']}", params=params)
    assert response.status_code == 422
    assert response.json()["status_code"] == 422


async def test_an_aeon_page_past_the_end_is_empty(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, 201, "Alice", "alice")
    chat = await alice.create_group("Team")
    await alice.send(chat["id"], "only")
    page = await alice.ok("GET", f"/api/v1/messages/chat/{chat['id']}", params={"page": 3})
    assert (page["messages"], page["total"], page["has_next"], page["has_prev"]) == (
        [],
        1,
        False,
        True,
    )


async def test_aeon_calls_without_init_data_are_401_in_aeon_error_shape(
    client: httpx.AsyncClient,
) -> None:
    for method, path in (("GET", "/api/v1/chats/"), ("POST", "/api/v1/messages/")):
        response = await client.request(method, path, json={})
        assert response.status_code == 401
        assert response.json()["status_code"] == 401
        assert response.json()["error"]
