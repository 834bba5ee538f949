from __future__ import annotations

import httpx

from tests.support.api import sign_up


async def test_two_users_chat(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, 1, "Alice", "alice")
    bob = await sign_up(client, 2, "Bob", "bob")
    chat = await alice.private_chat_with(bob)
    sent = await alice.send(chat["id"], "hello")
    listed = await bob.ok("GET", "/api/v1/chats")
    assert listed[0]["unread_count"] == 1
    assert listed[0]["last_message"]["text"] == "hello"
    await bob.ok("POST", f"/api/v1/chats/{chat['id']}/read", json={"message_id": sent["id"]})
    listed = await bob.ok("GET", "/api/v1/chats")
    assert listed[0]["unread_count"] == 0
    events = await bob.ok("GET", f"/api/v1/chats/{chat['id']}/events")
    assert [e["type"] for e in events["events"]] == ["member_added", "member_added", "new_message", "message_read"]
