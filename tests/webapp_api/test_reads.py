"""Read receipts: forward-only markers, unread counts, Aeon's read_by and read routes."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import ApiUser
from tests.support.messaging import stored_events


async def _read(user: ApiUser, chat_id: int, message_id: int) -> int:
    body = await user.ok("POST", f"/api/v1/chats/{chat_id}/read", json={"message_id": message_id})
    assert body["chat_id"] == chat_id
    marker: int = body["last_read_seq"]
    return marker


async def _unread(user: ApiUser) -> dict[int, int]:
    return {c["id"]: c["unread_count"] for c in await user.ok("GET", "/api/v1/chats")}


async def _read_by(user: ApiUser, chat_id: int) -> list[list[int]]:
    history = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    return [m["read_by"] for m in history["messages"]]


async def test_the_read_marker_moves_forward_only(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    first, _, third = [await alice.send(chat["id"], f"m{i}") for i in range(3)]
    assert await _read(bob, chat["id"], third["id"]) == third["seq"]
    assert await _read(bob, chat["id"], first["id"]) == third["seq"]
    (listed,) = await bob.ok("GET", "/api/v1/chats")
    assert listed["last_read_seq"] == third["seq"]
    shown = await bob.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert shown["my_settings"]["last_read_seq"] == third["seq"]


async def test_unread_counts_are_others_messages_after_my_marker(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    sent = [await alice.send(chat["id"], f"a{i}") for i in range(3)]
    await bob.send(chat["id"], "b")
    assert await _unread(bob) == {chat["id"]: 3}
    assert await _unread(carol) == {chat["id"]: 4}
    assert await _unread(alice) == {chat["id"]: 1}
    await _read(bob, chat["id"], sent[1]["id"])
    assert await _unread(bob) == {chat["id"]: 1}
    await _read(carol, chat["id"], sent[2]["id"])
    assert await _unread(carol) == {chat["id"]: 1}


async def test_unread_counts_are_per_chat(alice: ApiUser, bob: ApiUser, carol: ApiUser) -> None:
    with_alice = await bob.private_chat_with(alice)
    with_carol = await bob.private_chat_with(carol)
    quiet = await bob.create_group("Quiet", alice)
    await alice.send(with_alice["id"], "1")
    await alice.send(with_alice["id"], "2")
    await carol.send(with_carol["id"], "3")
    assert await _unread(bob) == {with_alice["id"]: 2, with_carol["id"]: 1, quiet["id"]: 0}


async def test_read_by_lists_the_members_whose_marker_passed_the_message(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    first, second, third = [await alice.send(chat["id"], f"m{i}") for i in range(3)]
    assert await _read_by(alice, chat["id"]) == [[], [], []]
    await _read(bob, chat["id"], second["id"])
    await _read(carol, chat["id"], first["id"])
    assert await _read_by(alice, chat["id"]) == [
        sorted([bob.id, carol.id]),
        [bob.id],
        [],
    ]
    # A sender never appears as a reader of their own message.
    await _read(alice, chat["id"], third["id"])
    assert await _read_by(bob, chat["id"]) == [sorted([bob.id, carol.id]), [bob.id], []]


async def test_aeon_read_marks_up_to_and_including_the_message(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    sent = [await alice.send(chat["id"], f"m{i}") for i in range(3)]
    body = await bob.ok("POST", f"/api/v1/messages/{sent[1]['id']}/read")
    assert body == {"chat_id": chat["id"], "last_read_seq": sent[1]["seq"]}
    assert await _unread(bob) == {chat["id"]: 1}
    assert await _read_by(alice, chat["id"]) == [[bob.id], [bob.id], []]


async def test_aeon_read_all_marks_the_whole_chat_read(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    sent = [await alice.send(chat["id"], f"m{i}") for i in range(3)]
    body = await bob.ok("POST", f"/api/v1/messages/chat/{chat['id']}/read-all")
    assert body == {"chat_id": chat["id"], "last_read_seq": sent[-1]["seq"]}
    assert await _unread(bob) == {chat["id"]: 0}


async def test_read_all_in_an_empty_chat_changes_nothing(
    alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Empty")
    body = await alice.ok("POST", f"/api/v1/messages/chat/{chat['id']}/read-all")
    assert body == {"chat_id": chat["id"], "last_read_seq": 0}
    assert len(await stored_events(sessionmaker, chat["id"])) == chat["last_seq"]


async def test_a_message_of_another_chat_cannot_move_my_marker(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    other = await alice.create_group("Other", bob)
    await alice.send(chat["id"], "here")
    for _ in range(3):
        await alice.send(other["id"], "there")
    foreign = await alice.send(other["id"], "far ahead")
    response = await bob.post(
        f"/api/v1/chats/{chat['id']}/read", json={"message_id": foreign["id"]}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "message_not_found"
    missing = await bob.post(f"/api/v1/chats/{chat['id']}/read", json={"message_id": 10**9})
    assert missing.status_code == 404
    assert (await bob.post(f"/api/v1/chats/{chat['id']}/read", json={})).status_code == 422
    assert (await _unread(bob))[chat["id"]] == 1


async def test_a_receipt_that_does_not_move_the_marker_records_no_event(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    first = await alice.send(chat["id"], "one")
    second = await alice.send(chat["id"], "two")
    await _read(bob, chat["id"], second["id"])
    await _read(bob, chat["id"], second["id"])
    await _read(bob, chat["id"], first["id"])
    reads = [e for e in await stored_events(sessionmaker, chat["id"]) if e.type == "message_read"]
    assert [e.payload for e in reads] == [
        {"message_id": second["id"], "user_id": bob.id, "last_read_seq": second["seq"]}
    ]


async def test_concurrent_receipts_end_at_the_newest_and_never_move_back(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    sent = [await alice.send(chat["id"], f"m{i}") for i in range(12)]
    order = list(sent)
    random.Random(7).shuffle(order)
    markers = await asyncio.gather(*(_read(bob, chat["id"], m["id"]) for m in order))
    # Each answer is at least the message it was for.
    assert all(marker >= m["seq"] for marker, m in zip(markers, order, strict=True))
    shown = await bob.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert shown["my_settings"]["last_read_seq"] == sent[-1]["seq"]
    events = await stored_events(sessionmaker, chat["id"])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    moves: list[Any] = [e.payload["last_read_seq"] for e in events if e.type == "message_read"]
    assert moves == sorted(set(moves))
    assert moves[-1] == sent[-1]["seq"]
    assert await _unread(bob) == {chat["id"]: 0}
