"""List endpoints run the same number of SQL statements whatever the size of the page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.api import ApiUser, sign_up
from tests.support.sql import count_statements


async def _statements(app: FastAPI, user: ApiUser, path: str, **params: Any) -> tuple[int, Any]:
    """How many statements one call runs (after a warm-up call), and its body."""
    await user.ok("GET", path, params=params)
    with count_statements(app, "") as seen:
        body = await user.ok("GET", path, params=params)
    return len(seen), body


@pytest.fixture
async def crowd(client: httpx.AsyncClient) -> list[ApiUser]:
    return [await sign_up(client, 300 + i, f"User{i}", f"user{i}") for i in range(10)]


async def _busy_message(sender: ApiUser, readers: list[ApiUser], chat_id: int, i: int) -> None:
    """A message with a reaction and a read receipt, so that every part of a view is filled."""
    message = await sender.send(chat_id, f"message {i}")
    for reader in readers:
        await reader.ok(
            "PUT", f"/api/v1/messages/{message['id']}/reaction", json={"emoji": f"e{i % 3}"}
        )
        await reader.ok("POST", f"/api/v1/chats/{chat_id}/read", json={"message_id": message["id"]})


async def _add_chats(alice: ApiUser, crowd: list[ApiUser], first: int, count: int) -> None:
    """Half private chats (each with another person), half groups, each with a message."""
    for i in range(first, first + count):
        other = crowd[i // 2]
        if i % 2:
            chat = await alice.create_group(f"Group {i}", other)
        else:
            chat = await alice.private_chat_with(other)
        await _busy_message(other, [alice], chat["id"], i)


@pytest.mark.parametrize(
    ("path", "params"),
    [("/api/v1/chats", {}), ("/api/v1/chats/search", {"q": "u"}), ("/api/v1/chats", {"q": "u"})],
    ids=["list", "search", "list-query"],
)
async def test_the_chat_list_costs_the_same_for_2_or_20_chats(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser], path: str, params: dict[str, str]
) -> None:
    await _add_chats(alice, crowd, 0, 2)
    small, small_body = await _statements(app, alice, path, **params)
    await _add_chats(alice, crowd, 2, 18)
    large, large_body = await _statements(app, alice, path, **params)
    assert (len(small_body), len(large_body)) == (2, 20)
    assert all(item["last_message"] is not None for item in large_body)
    assert large == small


async def _chat_with_messages(
    alice: ApiUser, crowd: list[ApiUser], count: int, *, chat: dict[str, Any] | None = None
) -> dict[str, Any]:
    chat = chat or await alice.create_group("Busy", *crowd)
    for i in range(count):
        sender = crowd[i % len(crowd)]
        await _busy_message(sender, [alice, crowd[(i + 1) % len(crowd)]], chat["id"], i)
    return chat


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/chats/{chat_id}/messages", {"limit": 100}),
        ("/api/v1/messages/chat/{chat_id}", {"per_page": 100}),
        ("/api/v1/chats/{chat_id}/events", {}),
        ("/api/v1/search/messages", {"q": "message"}),
        ("/api/v1/chats/{chat_id}/pinned", {}),
    ],
    ids=["history", "aeon-page", "events", "search", "pinned"],
)
async def test_message_lists_cost_the_same_for_2_or_20_messages(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser], path: str, params: dict[str, Any]
) -> None:
    chat = await _chat_with_messages(alice, crowd, 2)
    await _pin_all(alice, chat["id"])
    small, small_body = await _statements(app, alice, path.format(chat_id=chat["id"]), **params)
    await _chat_with_messages(alice, crowd, 18, chat=chat)
    await _pin_all(alice, chat["id"])
    large, large_body = await _statements(app, alice, path.format(chat_id=chat["id"]), **params)
    assert _size(large_body) > _size(small_body) >= 2
    assert large == small


async def _pin_all(user: ApiUser, chat_id: int) -> None:
    history = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages", params={"limit": 100})
    for message in history["messages"]:
        if not message["is_pinned"]:
            await user.ok("POST", f"/api/v1/messages/{message['id']}/pin")


def _size(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    return len(body["messages"] if "messages" in body else body["events"])


async def test_a_chats_detail_costs_the_same_for_2_or_11_members(
    app: FastAPI, alice: ApiUser, crowd: list[ApiUser]
) -> None:
    chat = await alice.create_group("Team", crowd[0])
    small, small_body = await _statements(app, alice, f"/api/v1/chats/{chat['id']}")
    for user in crowd[1:]:
        await alice.ok("POST", f"/api/v1/chats/{chat['id']}/members/{user.id}")
    large, large_body = await _statements(app, alice, f"/api/v1/chats/{chat['id']}")
    assert (len(small_body["members"]), len(large_body["members"])) == (2, 11)
    assert large == small
