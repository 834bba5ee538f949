"""The chat event log: gapless seqs, the difference endpoint, and the hand-off to the broker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Message as ASGIMessage

from models import ChatInvitation, Message, User
from tests.support.api import ApiUser, sign_up
from tests.support.messaging import broker_tap, chat_row, row_count, stored_events


async def _events(user: ApiUser, chat_id: int, **params: int) -> dict[str, Any]:
    body: dict[str, Any] = await user.ok("GET", f"/api/v1/chats/{chat_id}/events", params=params)
    return body


async def test_every_change_in_a_chat_is_an_event_with_the_next_seq(
    alice: ApiUser, bob: ApiUser, carol: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob)
    chat_id = chat["id"]
    await alice.ok("POST", f"/api/v1/chats/{chat_id}/members/{carol.id}")
    message = await alice.send(chat_id, "hello")
    mid = message["id"]
    await alice.ok("PUT", f"/api/v1/messages/{mid}", json={"text": "hello!"})
    await bob.ok("PUT", f"/api/v1/messages/{mid}/reaction", json={"emoji": "👍"})
    await alice.ok("POST", f"/api/v1/messages/{mid}/pin")
    await bob.ok("POST", f"/api/v1/chats/{chat_id}/read", json={"message_id": mid})
    await alice.ok("PATCH", f"/api/v1/chats/{chat_id}/members/{carol.id}", json={"role": "admin"})
    await alice.ok("DELETE", f"/api/v1/chats/{chat_id}/members/{carol.id}")
    await alice.ok("PATCH", f"/api/v1/chats/{chat_id}", json={"title": "Renamed"})
    await alice.ok("DELETE", f"/api/v1/messages/{mid}")
    expected = [
        "member_added",
        "member_added",
        "member_added",
        "new_message",
        "message_edited",
        "reaction_changed",
        "message_pinned",
        "message_read",
        "member_updated",
        "member_removed",
        "chat_updated",
        "message_deleted",
    ]
    replay = await _events(bob, chat_id)
    assert [e["type"] for e in replay["events"]] == expected
    assert [e["seq"] for e in replay["events"]] == list(range(1, len(expected) + 1))
    assert {e["chat_id"] for e in replay["events"]} == {chat_id}
    assert (replay["last_seq"], replay["has_more"]) == (len(expected), False)
    assert message["seq"] == expected.index("new_message") + 1

    await alice.ok("DELETE", f"/api/v1/chats/{chat_id}")
    stored = await stored_events(sessionmaker, chat_id)
    assert [e.type for e in stored] == [*expected, "chat_deleted"]
    assert [e.seq for e in stored] == list(range(1, len(expected) + 2))
    assert (await chat_row(sessionmaker, chat_id)).last_seq == len(expected) + 1


async def test_the_difference_endpoint_pages_after_a_seq(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)  # seqs 1 and 2: both members added
    sent = [await alice.send(chat["id"], f"m{i}") for i in range(4)]  # seqs 3..6
    page = await _events(bob, chat["id"], after_seq=2, limit=2)
    assert [e["seq"] for e in page["events"]] == [3, 4]
    assert [e["message"]["id"] for e in page["events"]] == [sent[0]["id"], sent[1]["id"]]
    assert (page["last_seq"], page["has_more"]) == (6, True)
    rest = await _events(bob, chat["id"], after_seq=4)
    assert ([e["seq"] for e in rest["events"]], rest["has_more"]) == ([5, 6], False)
    caught_up = await _events(bob, chat["id"], after_seq=6)
    assert (caught_up["events"], caught_up["last_seq"], caught_up["has_more"]) == ([], 6, False)


@pytest.mark.parametrize("params", [{"after_seq": -1}, {"limit": 0}, {"limit": 1001}])
async def test_bad_difference_parameters_are_422(alice: ApiUser, params: dict[str, int]) -> None:
    chat = await alice.create_group("Team")
    response = await alice.get(f"/api/v1/chats/{chat['id']}/events", params=params)
    assert response.status_code == 422


async def test_the_broker_gets_exactly_the_frames_the_difference_endpoint_replays(
    app: FastAPI, alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.create_group("Team")
    start = chat["last_seq"]
    with broker_tap(app) as tap:
        await alice.ok("POST", f"/api/v1/chats/{chat['id']}/members/{bob.id}")
        message = await bob.send(chat["id"], "hi")
        await alice.ok("PUT", f"/api/v1/messages/{message['id']}/reaction", json={"emoji": "🎉"})
        await alice.ok(
            "POST", f"/api/v1/chats/{chat['id']}/read", json={"message_id": message["id"]}
        )
        await bob.ok("DELETE", f"/api/v1/messages/{message['id']}")
        replay = (await _events(alice, chat["id"], after_seq=start))["events"]
        published = await tap.chat_events(chat["id"], start, len(replay))
    assert [e["type"] for e in replay] == [
        "member_added",
        "new_message",
        "reaction_changed",
        "message_read",
        "message_deleted",
    ]
    assert [p.frame for p in published] == replay
    assert [p.seq for p in published] == [e["seq"] for e in replay]
    new_message = next(p.frame for p in published if p.frame["type"] == "new_message")
    assert new_message["message"] == message


async def test_events_go_to_the_members_and_to_a_member_just_removed(
    app: FastAPI, alice: ApiUser, bob: ApiUser, carol: ApiUser, dave: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    await dave.create_group("Dave's")
    with broker_tap(app) as tap:
        await alice.send(chat["id"], "to all")
        await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{carol.id}")
        await alice.send(chat["id"], "without carol")
        published = await tap.chat_events(chat["id"], chat["last_seq"], 3)
    assert [(p.frame["type"], p.user_ids) for p in published] == [
        ("new_message", sorted([alice.id, bob.id, carol.id])),
        ("member_removed", sorted([alice.id, bob.id, carol.id])),
        ("new_message", sorted([alice.id, bob.id])),
    ]


async def test_the_members_of_a_deleted_chat_are_told(
    app: FastAPI, alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob)
    with broker_tap(app) as tap:
        await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}")
        (published,) = await tap.chat_events(chat["id"], chat["last_seq"], 1)
    assert published.user_ids == sorted([alice.id, bob.id])
    assert published.frame["type"] == "chat_deleted"
    assert (published.frame["chat"]["id"], published.frame["chat"]["is_active"]) == (
        chat["id"],
        False,
    )


async def test_a_refused_send_publishes_nothing_and_changes_nothing(
    app: FastAPI,
    alice: ApiUser,
    bob: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    chat = await alice.create_group("Team", bob)
    other = await alice.create_group("Other")
    foreign = await alice.send(other["id"], "elsewhere")
    before = await chat_row(sessionmaker, chat["id"])
    with broker_tap(app) as tap:
        response = await bob.post(
            f"/api/v1/chats/{chat['id']}/messages",
            json={"text": "reply", "reply_to_message_id": foreign["id"]},
        )
        assert response.status_code == 422
        after = await chat_row(sessionmaker, chat["id"])
        assert (after.last_seq, after.last_message_id) == (before.last_seq, before.last_message_id)
        assert await row_count(sessionmaker, Message) == 1
        # A later send in the chat takes the very next seq, and is all that was published.
        marker = await bob.send(chat["id"], "marker")
        published = await tap.chat_events(chat["id"], before.last_seq, 1)
    assert marker["seq"] == before.last_seq + 1
    assert [(p.seq, p.frame["type"]) for p in published] == [(marker["seq"], "new_message")]


async def test_a_request_failing_after_partial_work_is_rolled_back_and_publishes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    chat = await alice.create_group("Team")
    other = await alice.create_group("Other")
    foreign = await alice.send(other["id"], "elsewhere")
    await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", json={"username": "erin"}
    )
    erin = ApiUser(client, 105, "Erin", "erin")
    users_before = await row_count(sessionmaker, User)
    start = chat["last_seq"]
    with broker_tap(app) as tap:
        # Erin's first request signs her up and accepts the invitation (a member_added event),
        # then fails: all of it must vanish.
        response = await erin.post(
            f"/api/v1/chats/{chat['id']}/messages",
            json={"text": "hi", "reply_to_message_id": foreign["id"]},
        )
        assert response.status_code == 422
        assert await row_count(sessionmaker, User) == users_before
        assert await row_count(sessionmaker, ChatInvitation) == 1
        assert len(await stored_events(sessionmaker, chat["id"])) == start
        # The next request does it all again, for good, and only that is published.
        sent = await erin.send(chat["id"], "hi")
        published = await tap.chat_events(chat["id"], start, 2)
    assert [(p.seq, p.frame["type"]) for p in published] == [
        (start + 1, "member_added"),
        (start + 2, "new_message"),
    ]
    assert sent["seq"] == start + 2


async def test_a_retried_send_publishes_nothing(app: FastAPI, alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    first = await alice.send(chat["id"], "once", client_msg_id="k")
    with broker_tap(app) as tap:
        await alice.send(chat["id"], "once", client_msg_id="k")
        marker = await alice.send(chat["id"], "marker")
        published = await tap.chat_events(chat["id"], first["seq"], 1)
    assert [p.seq for p in published] == [marker["seq"]] == [first["seq"] + 1]


async def test_concurrent_senders_get_unique_gapless_seqs(
    app: FastAPI,
    alice: ApiUser,
    bob: ApiUser,
    carol: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    chat = await alice.create_group("Busy", bob, carol)
    start = chat["last_seq"]
    senders = [alice, bob, carol]
    with broker_tap(app) as tap:
        sent = await asyncio.gather(
            *(senders[i % 3].send(chat["id"], f"m{i}") for i in range(21)),
            *(
                bob.ok("POST", "/api/v1/messages", json={"chat_id": chat["id"], "text": "aeon"})
                for _ in range(3)
            ),
        )
        published = await tap.chat_events(chat["id"], start, len(sent))
    seqs = sorted(m["seq"] for m in sent)
    assert seqs == list(range(start + 1, start + len(sent) + 1))
    events = await stored_events(sessionmaker, chat["id"])
    assert [e.seq for e in events] == list(range(1, start + len(sent) + 1))
    assert {e.payload["message"]["id"]: e.seq for e in events[start:]} == {
        m["id"]: m["seq"] for m in sent
    }
    assert [p.seq for p in published] == seqs
    # Ids and seqs grow together: history ordered by id is in seq order.
    assert [m["seq"] for m in sorted(sent, key=lambda m: m["id"])] == seqs
    assert (await chat_row(sessionmaker, chat["id"])).last_seq == seqs[-1]
    history = await alice.ok("GET", f"/api/v1/chats/{chat['id']}/messages", params={"limit": 100})
    assert [m["seq"] for m in history["messages"]] == seqs


async def test_a_new_members_first_sign_in_records_their_invitation_as_an_event(
    client: httpx.AsyncClient, alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team")
    await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", json={"username": "frank"}
    )
    frank = await sign_up(client, 106, "Frank", "frank")
    event = (await stored_events(sessionmaker, chat["id"]))[-1]
    assert (event.type, event.payload["user_id"], event.payload["role"]) == (
        "member_added",
        frank.id,
        "member",
    )


async def test_a_change_is_committed_and_published_before_its_response_starts(
    app: FastAPI, alice: ApiUser
) -> None:
    """Driven through the ASGI interface to see the moment the response starts: a client must
    never see a success that is not committed, nor miss its event after the response."""
    chat = await alice.create_group("Team")
    path = f"/api/v1/chats/{chat['id']}/messages"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            *((k.lower().encode(), v.encode()) for k, v in alice.headers.items()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
    requests: list[ASGIMessage] = [
        {"type": "http.request", "body": b'{"text": "hi"}', "more_body": False}
    ]

    async def receive() -> ASGIMessage:
        return requests.pop() if requests else {"type": "http.disconnect"}

    published_at_start: list[int] = []
    statuses: list[int] = []
    with broker_tap(app) as tap:

        async def send(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
                published_at_start.append(len(tap.in_chat(chat["id"], chat["last_seq"])))

        await app(scope, receive, send)
    assert statuses == [200]
    assert published_at_start == [1]
