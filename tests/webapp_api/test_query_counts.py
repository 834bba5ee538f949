"""List endpoints run the same number of SQL statements whatever the size of the page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.api import ApiUser, sign_up
from tests.support.sql import count_statements


async def _statements(
    app: FastAPI, user: ApiUser, path: str, params: dict[str, Any], prefix: str = ""
) -> int:
    """How many statements (starting with `prefix`) one call runs (after a warm-up call)."""
    await user.ok("GET", path, params=params)
    with count_statements(app, prefix) as seen:
        await user.ok("GET", path, params=params)
    return len(seen)


@pytest.fixture
async def crowd(client: httpx.AsyncClient) -> list[ApiUser]:
    return [await sign_up(client, 300 + i, f"User{i}", f"user{i}") for i in range(10)]


async def _busy_message(
    sender: ApiUser, reactor: ApiUser, chat_id: int, i: int, *, pin: bool = False
) -> None:
    """A message with a reaction (and a pin), so that every part of its view is filled."""
    message = await sender.send(chat_id, f"message {i}")
    await reactor.ok(
        "PUT", f"/api/v1/messages/{message['id']}/reaction", json={"emoji": f"e{i % 3}"}
    )
    if pin:
        await reactor.ok("POST", f"/api/v1/messages/{message['id']}/pin")


CHAT_LISTS: dict[str, tuple[str, dict[str, Any]]] = {
    "list": ("/api/v1/chats", {}),
    "list-query": ("/api/v1/chats", {"q": "u"}),
    "search": ("/api/v1/chats/search", {"q": "u"}),
}


async def _add_chats(alice: ApiUser, crowd: list[ApiUser], first: int, count: int) -> None:
    """Half private chats (each with another person), half groups; each with a message that
    the other person sent and Alice reacted to; some of them read."""
    for i in range(first, first + count):
        other = crowd[i // 2]
        if i % 2:
            chat = await alice.create_group(f"Group {i}", other)
        else:
            chat = await alice.private_chat_with(other)
        await _busy_message(other, alice, chat["id"], i)
        if i % 3 == 0:
            await alice.ok("POST", f"/api/v1/messages/chat/{chat['id']}/read-all")


async def test_chat_lists_cost_the_same_for_2_or_20_chats(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser]
) -> None:
    await _add_chats(alice, crowd, 0, 2)
    small = {name: await _statements(app, alice, *call) for name, call in CHAT_LISTS.items()}
    await _add_chats(alice, crowd, 2, 18)
    large = {name: await _statements(app, alice, *call) for name, call in CHAT_LISTS.items()}
    listed = await alice.ok("GET", "/api/v1/chats")
    assert len(listed) == 20
    assert all(item["last_message_detail"]["reactions"] for item in listed)
    assert {item["chat_type"] for item in listed} == {"private", "group"}
    assert large == small


MESSAGE_LISTS: dict[str, tuple[str, dict[str, Any]]] = {
    "history": ("/api/v1/chats/{chat_id}/messages", {"limit": 100}),
    "aeon-page": ("/api/v1/messages/chat/{chat_id}", {"per_page": 100}),
    "events": ("/api/v1/chats/{chat_id}/events", {}),
    "pinned": ("/api/v1/chats/{chat_id}/pinned", {}),
    "search": ("/api/v1/search/messages", {"q": "message", "limit": 50}),
}


async def _message_lists(app: FastAPI, user: ApiUser, chat_id: int) -> dict[str, int]:
    return {
        name: await _statements(app, user, path.format(chat_id=chat_id), params)
        for name, (path, params) in MESSAGE_LISTS.items()
    }


async def _add_messages(
    alice: ApiUser, crowd: list[ApiUser], chat_id: int, first: int, count: int
) -> None:
    """Messages from several senders, each with a reaction and a pin; several readers."""
    for i in range(first, first + count):
        await _busy_message(crowd[i % len(crowd)], alice, chat_id, i, pin=True)
    last = (await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages"))["messages"][-1]
    for reader in crowd[:3]:
        await reader.ok("POST", f"/api/v1/messages/{last['id']}/read")


async def test_message_lists_cost_the_same_for_2_or_20_messages(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser]
) -> None:
    chat = await alice.create_group("Busy", *crowd)
    await _add_messages(alice, crowd, chat["id"], 0, 2)
    small = await _message_lists(app, alice, chat["id"])
    await _add_messages(alice, crowd, chat["id"], 2, 18)
    large = await _message_lists(app, alice, chat["id"])
    history = await alice.ok("GET", f"/api/v1/chats/{chat['id']}/messages", params={"limit": 100})
    assert len(history["messages"]) == 20
    assert all(m["reactions"] and m["is_pinned"] and m["read_by"] for m in history["messages"])
    assert len({m["sender_id"] for m in history["messages"]}) == len(crowd)
    assert large == small


async def test_a_chats_detail_costs_the_same_for_2_or_11_members(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser]
) -> None:
    chat = await alice.create_group("Team", crowd[0])
    small = await _statements(app, alice, f"/api/v1/chats/{chat['id']}", {})
    for user in crowd[1:]:
        await alice.ok("POST", f"/api/v1/chats/{chat['id']}/members/{user.id}")
    large = await _statements(app, alice, f"/api/v1/chats/{chat['id']}", {})
    shown = await alice.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert len(shown["members"]) == 11
    assert large == small


# Reads only: `/me` reads what authentication reads (nothing, its user remembered), and a unit
# of work that reads begins its transaction on SQLite.
READS = "SELECT"


async def test_the_chat_list_reads_twice_beyond_authentication(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser]
) -> None:
    """Its version and the list itself (each chat with its last message, sender, readers and
    reactions). A poll that matches its ETag reads the version only."""
    await _add_chats(alice, crowd, 0, 6)
    authentication = await _statements(app, alice, "/api/v1/me", {}, READS)
    assert await _statements(app, alice, "/api/v1/chats", {}, READS) == authentication + 2
    tag = (await alice.get("/api/v1/chats")).headers["ETag"]
    with count_statements(app, READS) as seen:
        response = await alice.get("/api/v1/chats", headers={"If-None-Match": tag})
    assert response.status_code == 304
    assert len(seen) == authentication + 1


async def test_a_history_window_reads_twice_and_a_page_three_times_beyond_authentication(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser]
) -> None:
    """A history window: the membership check and the window itself (messages, senders,
    readers, reactions); Aeon's page: its version, its total and the page."""
    chat = await alice.create_group("Busy", *crowd)
    await _add_messages(alice, crowd, chat["id"], 0, 6)
    authentication = await _statements(app, alice, "/api/v1/me", {}, READS)
    history = await _statements(app, alice, f"/api/v1/chats/{chat['id']}/messages", {}, READS)
    page = await _statements(app, alice, f"/api/v1/messages/chat/{chat['id']}", {}, READS)
    assert (history, page) == (authentication + 2, authentication + 3)
