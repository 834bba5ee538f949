"""Messages over the native API: send, retry, forward, edit, delete, react, pin, history, search."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Media, MediaKind, Message, User
from services import messages
from services.messages import MessageDraft
from services.views.messages import message_view
from tests.support.api import ApiUser
from tests.support.messaging import row_count, stored_events


async def _history(user: ApiUser, chat_id: int, **params: int) -> dict[str, Any]:
    body: dict[str, Any] = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages", params=params)
    return body


async def _texts(user: ApiUser, chat_id: int, **params: int) -> list[str | None]:
    return [m["text"] for m in (await _history(user, chat_id, **params))["messages"]]


# -- sending ----------------------------------------------------------------------------------


async def test_a_sent_message_is_trimmed_and_carries_its_sender_and_seq(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    sent = await alice.send(chat["id"], "  hello  ")
    assert sent["text"] == "hello"
    assert (sent["chat_id"], sent["sender_id"], sent["message_type"]) == (
        chat["id"],
        alice.id,
        "text",
    )
    assert sent["sender"]["first_name"] == "Alice"
    assert sent["seq"] == chat["last_seq"] + 1
    assert (sent["is_edited"], sent["is_deleted"], sent["is_pinned"]) == (False, False, False)
    assert (sent["read_by"], sent["reactions"]) == ([], [])
    assert sent["created_at"].endswith(("+00:00", "Z"))
    assert await _texts(bob, chat["id"]) == ["hello"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": ""}, 422),
        ({"text": " \n\t "}, 422),
        ({}, 422),
        ({"text": "x" * 4097}, 422),
        ({"text": "x" * 4096}, 200),
        ({"text": "  " + "x" * 4096 + "  "}, 200),
        ({"text": "ok", "client_msg_id": ""}, 422),
        ({"text": "ok", "client_msg_id": "c" * 65}, 422),
    ],
    ids=["empty", "blank", "missing", "too-long", "max", "max-after-trim", "empty-id", "long-id"],
)
async def test_message_text_is_1_to_4096_characters_after_trimming(
    alice: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
    body: dict[str, str],
    status: int,
) -> None:
    chat = await alice.create_group("Team")
    response = await alice.post(f"/api/v1/chats/{chat['id']}/messages", json=body)
    assert response.status_code == status, response.text
    assert await row_count(sessionmaker, Message) == (1 if status == 200 else 0)


async def test_a_reply_names_a_message_of_the_same_chat(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    first = await alice.send(chat["id"], "question")
    reply = await bob.send(chat["id"], "answer", reply_to_message_id=first["id"])
    assert reply["reply_to_message_id"] == first["id"]


async def test_a_reply_to_a_message_of_another_chat_is_refused_and_creates_nothing(
    alice: ApiUser,
    bob: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    here = await alice.create_group("Here", bob)
    elsewhere = await alice.create_group("Elsewhere")
    foreign = await alice.send(elsewhere["id"], "secret")
    response = await bob.post(
        f"/api/v1/chats/{here['id']}/messages",
        json={"text": "hi", "reply_to_message_id": foreign["id"]},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "bad_reply_to"
    assert "secret" not in response.text
    missing = await bob.post(
        f"/api/v1/chats/{here['id']}/messages", json={"text": "hi", "reply_to_message_id": 10**9}
    )
    assert missing.status_code == 422
    assert await _texts(bob, here["id"]) == []
    assert len(await stored_events(sessionmaker, here["id"])) == here["last_seq"]


async def test_the_sender_is_the_caller_whatever_the_body_says(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    response = await bob.post(
        f"/api/v1/chats/{chat['id']}/messages",
        json={"text": "from bob", "sender_id": alice.id, "user_id": alice.id},
    )
    assert response.json()["sender_id"] == bob.id
    aeon = await bob.post(
        "/api/v1/messages", json={"chat_id": chat["id"], "text": "again", "sender_id": alice.id}
    )
    assert aeon.json()["sender_id"] == bob.id


@pytest.mark.parametrize("kind", ["text", "reply", "forward", "media"])
async def test_a_sent_message_shows_what_reading_it_back_shows(
    app: FastAPI, alice: ApiUser, bob: ApiUser, kind: str
) -> None:
    """The view of a new message is built without reading it back; it must be the same."""
    chat = await alice.private_chat_with(bob)
    earlier = await bob.send(chat["id"], "earlier")
    await bob.ok("POST", f"/api/v1/chats/{chat['id']}/read", json={"message_id": earlier["id"]})
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.context.sessionmaker
    async with sessionmaker() as session:
        sender = await session.get(User, alice.id)
        assert sender is not None
        photo = Media(
            uploader_id=alice.id,
            kind=MediaKind.PHOTO,
            mime_type="image/png",
            size=68,
            sha256="0" * 64,
            original_filename="dot.png",
            width=1,
            height=1,
            thumbnail_key="thumbnail",
        )
        session.add(photo)
        await session.flush()
        if kind == "forward":
            sent = await messages.forward_message(session, sender, earlier["id"], chat["id"])
        else:
            draft = MessageDraft(
                text="hi",
                reply_to_message_id=earlier["id"] if kind == "reply" else None,
                client_msg_id="view",
                media_ids=[photo.id] if kind == "media" else (),
            )
            sent = await messages.send_message(session, sender, chat["id"], draft)
        stored = await session.get(Message, (sent.view.id, sent.view.chat_id))
        assert stored is not None
        read_back = await message_view(session, stored)
    assert sent.view.model_dump(mode="json") == read_back.model_dump(mode="json")
    assert (read_back.reply_to_message_id, read_back.forward_from_user_id) == (
        earlier["id"] if kind == "reply" else None,
        bob.id if kind == "forward" else None,
    )
    assert [m.id for m in read_back.media] == ([photo.id] if kind == "media" else [])


# -- idempotent retries -----------------------------------------------------------------------


async def test_a_retry_with_the_same_client_msg_id_returns_the_original_and_creates_nothing(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    first = await alice.send(chat["id"], "once", client_msg_id="c-1")
    retry = await alice.send(chat["id"], "once (edited by the client)", client_msg_id="c-1")
    assert retry == first
    assert first["client_msg_id"] == "c-1"
    assert await row_count(sessionmaker, Message) == 1
    assert [e.type for e in await stored_events(sessionmaker, chat["id"])].count("new_message") == 1
    # The id is the sender's: someone else may use the same one.
    other = await bob.send(chat["id"], "mine", client_msg_id="c-1")
    assert other["id"] != first["id"]


async def test_concurrent_retries_create_one_message(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    results = await asyncio.gather(
        *(alice.send(chat["id"], "racy", client_msg_id="same") for _ in range(8))
    )
    assert len({r["id"] for r in results}) == 1
    assert await row_count(sessionmaker, Message) == 1
    events = await stored_events(sessionmaker, chat["id"])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("new_message") == 1


async def test_a_client_msg_id_used_in_another_chat_is_another_message_not_that_one(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    """The key is the sender's within a chat (history is partitioned by chat)."""
    old = await alice.create_group("Old", bob)
    await alice.send(old["id"], "private words", client_msg_id="dup")
    other = await alice.private_chat_with(carol)
    response = await alice.post(
        f"/api/v1/chats/{other['id']}/messages", json={"text": "new", "client_msg_id": "dup"}
    )
    assert response.status_code == 200
    assert "private words" not in response.text
    assert await _texts(carol, other["id"]) == ["new"]


# -- forwarding -------------------------------------------------------------------------------


async def test_a_forward_copies_the_message_and_names_its_source(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    source = await alice.create_group("Source", bob)
    target = await bob.private_chat_with(carol)
    original = await alice.send(source["id"], "worth sharing")
    copy = await bob.ok(
        "POST",
        "/api/v1/messages/forward",
        params={"message_id": original["id"], "chat_id": target["id"]},
    )
    assert copy["id"] != original["id"]
    assert (copy["chat_id"], copy["sender_id"], copy["text"]) == (
        target["id"],
        bob.id,
        "worth sharing",
    )
    assert (copy["forward_from_user_id"], copy["forward_from_chat_id"]) == (
        alice.id,
        source["id"],
    )
    assert await _texts(carol, target["id"]) == ["worth sharing"]


async def test_a_forward_of_a_forward_keeps_the_original_source(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    source = await alice.create_group("Source", bob)
    middle = await bob.private_chat_with(carol)
    last = await carol.create_group("Last")
    original = await alice.send(source["id"], "news")
    first = await bob.ok(
        "POST",
        "/api/v1/messages/forward",
        params={"message_id": original["id"], "chat_id": middle["id"]},
    )
    second = await carol.ok(
        "POST",
        "/api/v1/messages/forward",
        params={"message_id": first["id"], "chat_id": last["id"]},
    )
    assert (second["forward_from_user_id"], second["forward_from_chat_id"]) == (
        alice.id,
        source["id"],
    )


async def test_forwarding_needs_membership_of_both_chats(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    mine = await alice.create_group("Mine", bob)
    not_mine = await carol.create_group("Carol's")
    theirs = await carol.send(not_mine["id"], "carol only")
    message = await alice.send(mine["id"], "hello")
    into = await alice.post(
        "/api/v1/messages/forward", params={"message_id": message["id"], "chat_id": not_mine["id"]}
    )
    assert into.status_code == 404
    out_of = await alice.post(
        "/api/v1/messages/forward", params={"message_id": theirs["id"], "chat_id": mine["id"]}
    )
    assert out_of.status_code == 404
    assert "carol only" not in out_of.text
    assert await _texts(carol, not_mine["id"]) == ["carol only"]
    assert await _texts(alice, mine["id"]) == ["hello"]


async def test_a_deleted_message_cannot_be_forwarded(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "oops")
    await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    response = await alice.post(
        "/api/v1/messages/forward", params={"message_id": message["id"], "chat_id": chat["id"]}
    )
    assert response.status_code == 400


# -- editing ----------------------------------------------------------------------------------


async def test_the_sender_edits_a_message(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "draft")
    edited = await alice.ok("PUT", f"/api/v1/messages/{message['id']}", json={"text": " final "})
    assert (edited["text"], edited["is_edited"]) == ("final", True)
    assert edited["edited_at"] is not None
    assert edited["seq"] == message["seq"]
    patched = await alice.ok("PATCH", f"/api/v1/messages/{message['id']}", json={"text": "v3"})
    assert patched["text"] == "v3"
    assert await _texts(bob, chat["id"]) == ["v3"]
    events = await stored_events(sessionmaker, chat["id"])
    assert [e.type for e in events][-2:] == ["message_edited", "message_edited"]
    assert events[-1].payload["message"]["text"] == "v3"


async def test_an_edit_to_the_same_text_changes_nothing(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "same")
    unchanged = await alice.ok("PUT", f"/api/v1/messages/{message['id']}", json={"text": "same"})
    assert unchanged["is_edited"] is False
    assert [e.type for e in await stored_events(sessionmaker, chat["id"])][-1] == "new_message"


async def test_only_the_sender_edits_and_never_after_deletion(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    message = await bob.send(chat["id"], "bob's")
    # Not even the group owner edits someone else's words.
    response = await alice.put(f"/api/v1/messages/{message['id']}", json={"text": "alice's"})
    assert response.status_code == 403
    assert response.json()["code"] == "not_message_sender"
    for text in (" ", "x" * 4097):
        response = await bob.put(f"/api/v1/messages/{message['id']}", json={"text": text})
        assert response.status_code == 422
    await bob.ok("DELETE", f"/api/v1/messages/{message['id']}")
    response = await bob.put(f"/api/v1/messages/{message['id']}", json={"text": "back"})
    assert response.status_code == 400
    assert response.json()["code"] == "message_deleted"
    assert await _texts(alice, chat["id"]) == [None]


# -- deleting ---------------------------------------------------------------------------------


async def test_deleting_clears_the_text_and_leaves_a_placeholder(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "regret")
    deleted = await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    assert (deleted["id"], deleted["text"], deleted["is_deleted"]) == (message["id"], None, True)
    (shown,) = (await _history(bob, chat["id"]))["messages"]
    assert (shown["id"], shown["text"], shown["is_deleted"]) == (message["id"], None, True)
    async with sessionmaker() as session:
        row = await session.get(Message, (message["id"], chat["id"]))
        assert row is not None
        assert row.text is None
    again = await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    assert again["is_deleted"] is True
    types = [e.type for e in await stored_events(sessionmaker, chat["id"])]
    assert types.count("message_deleted") == 1


async def test_a_group_admin_deletes_anyones_message_a_member_only_their_own(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    bobs = await bob.send(chat["id"], "bob")
    carols = await carol.send(chat["id"], "carol")
    assert (await bob.delete(f"/api/v1/messages/{carols['id']}")).status_code == 403
    assert (await alice.ok("DELETE", f"/api/v1/messages/{carols['id']}"))["is_deleted"] is True
    assert (await bob.ok("DELETE", f"/api/v1/messages/{bobs['id']}"))["is_deleted"] is True


async def test_in_a_private_chat_only_the_sender_deletes(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "mine")
    response = await bob.delete(f"/api/v1/messages/{message['id']}")
    assert response.status_code == 403
    assert await _texts(bob, chat["id"]) == ["mine"]


async def test_deleting_unpins_and_drops_reactions(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "pinned")
    await alice.ok("POST", f"/api/v1/messages/{message['id']}/pin")
    await bob.ok("PUT", f"/api/v1/messages/{message['id']}/reaction", json={"emoji": "👍"})
    deleted = await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    assert (deleted["is_pinned"], deleted["reactions"]) == (False, [])
    assert await bob.ok("GET", f"/api/v1/chats/{chat['id']}/pinned") == []


# -- reactions --------------------------------------------------------------------------------


async def test_each_user_has_one_reaction_per_message_and_counts_are_shown(
    alice: ApiUser, bob: ApiUser, carol: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    message = await alice.send(chat["id"], "vote")
    path = f"/api/v1/messages/{message['id']}/reaction"
    await bob.ok("PUT", path, json={"emoji": "👍"})
    shown = await carol.ok("PUT", path, json={"emoji": "👍"})
    assert shown["reactions"] == [{"emoji": "👍", "count": 2, "user_ids": [bob.id, carol.id]}]
    shown = await bob.ok("PUT", path, json={"emoji": "❤️"})
    assert sorted((r["emoji"], r["count"], r["user_ids"]) for r in shown["reactions"]) == [
        ("❤️", 1, [bob.id]),
        ("👍", 1, [carol.id]),
    ]
    shown = await carol.ok("DELETE", path)
    only_bobs = [{"emoji": "❤️", "count": 1, "user_ids": [bob.id]}]
    assert shown["reactions"] == only_bobs
    (listed,) = (await _history(alice, chat["id"]))["messages"]
    assert listed["reactions"] == only_bobs
    event = (await stored_events(sessionmaker, chat["id"]))[-1]
    assert event.type == "reaction_changed"
    assert event.payload == {
        "message_id": message["id"],
        "user_id": carol.id,
        "emoji": None,
        "reactions": only_bobs,
    }


async def test_setting_the_same_reaction_again_or_removing_none_records_nothing(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "x")
    path = f"/api/v1/messages/{message['id']}/reaction"
    await alice.ok("DELETE", path)
    await bob.ok("PUT", path, json={"emoji": "🔥"})
    await bob.ok("PUT", path, json={"emoji": "🔥"})
    types = [e.type for e in await stored_events(sessionmaker, chat["id"])]
    assert types.count("reaction_changed") == 1


async def test_bad_reactions_are_refused(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "x")
    path = f"/api/v1/messages/{message['id']}/reaction"
    assert (await bob.put(path, json={"emoji": ""})).status_code == 422
    assert (await bob.put(path, json={"emoji": "   "})).status_code == 422
    assert (await bob.put(path, json={"emoji": "x" * 33})).status_code == 422
    await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    assert (await bob.put(path, json={"emoji": "👍"})).status_code == 400


# -- pins -------------------------------------------------------------------------------------


async def test_group_admins_pin_and_unpin_and_members_list_the_pins(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob)
    first = await bob.send(chat["id"], "first")
    second = await bob.send(chat["id"], "second")
    pinned = await alice.ok("POST", f"/api/v1/messages/{first['id']}/pin")
    assert pinned["is_pinned"] is True
    await alice.ok("POST", f"/api/v1/messages/{second['id']}/pin")
    await alice.ok("POST", f"/api/v1/messages/{second['id']}/pin")  # already pinned: no event
    listed = await bob.ok("GET", f"/api/v1/chats/{chat['id']}/pinned")
    assert [m["id"] for m in listed] == [second["id"], first["id"]]
    unpinned = await alice.ok("DELETE", f"/api/v1/messages/{first['id']}/pin")
    assert unpinned["is_pinned"] is False
    listed = await bob.ok("GET", f"/api/v1/chats/{chat['id']}/pinned")
    assert [m["id"] for m in listed] == [second["id"]]
    events = [
        e for e in await stored_events(sessionmaker, chat["id"]) if e.type == "message_pinned"
    ]
    assert [(e.payload["message_id"], e.payload["is_pinned"]) for e in events] == [
        (first["id"], True),
        (second["id"], True),
        (first["id"], False),
    ]


async def test_plain_group_members_cannot_pin(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    message = await bob.send(chat["id"], "mine")
    response = await bob.post(f"/api/v1/messages/{message['id']}/pin")
    assert response.status_code == 403
    assert await alice.ok("GET", f"/api/v1/chats/{chat['id']}/pinned") == []


async def test_both_sides_of_a_private_chat_may_pin(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "remember")
    assert (await bob.ok("POST", f"/api/v1/messages/{message['id']}/pin"))["is_pinned"] is True


# -- history ----------------------------------------------------------------------------------


async def test_history_pages_backwards_and_forwards_by_id(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    sent = [await alice.send(chat["id"], f"m{i}") for i in range(7)]
    ids = [m["id"] for m in sent]
    newest = await _history(bob, chat["id"], limit=3)
    assert [m["id"] for m in newest["messages"]] == ids[4:]
    assert newest["has_more"] is True
    older = await _history(bob, chat["id"], limit=3, before_id=ids[4])
    assert [m["id"] for m in older["messages"]] == ids[1:4]
    oldest = await _history(bob, chat["id"], limit=3, before_id=ids[1])
    assert ([m["id"] for m in oldest["messages"]], oldest["has_more"]) == ([ids[0]], False)
    after = await _history(bob, chat["id"], limit=3, after_id=ids[2])
    assert ([m["id"] for m in after["messages"]], after["has_more"]) == (ids[3:6], True)
    tail = await _history(bob, chat["id"], limit=3, after_id=ids[5])
    assert ([m["id"] for m in tail["messages"]], tail["has_more"]) == ([ids[6]], False)


async def test_history_only_shows_this_chats_messages(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    other = await alice.private_chat_with(carol)
    await alice.send(chat["id"], "for bob")
    await alice.send(other["id"], "for carol")
    assert await _texts(bob, chat["id"]) == ["for bob"]
    assert await _texts(bob, chat["id"], after_id=0) == ["for bob"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"before_id": 5, "after_id": 1}, {"before_id": "x"}],
)
async def test_bad_history_parameters_are_422(alice: ApiUser, params: dict[str, int | str]) -> None:
    chat = await alice.create_group("Team")
    response = await alice.get(f"/api/v1/chats/{chat['id']}/messages", params=params)
    assert response.status_code == 422


# -- search -----------------------------------------------------------------------------------


async def test_search_finds_words_in_my_chats_only_newest_first(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    mine = await alice.private_chat_with(bob)
    group = await alice.create_group("Team", carol)
    not_mine = await bob.private_chat_with(carol)
    first = await bob.send(mine["id"], "The quick brown fox")
    second = await carol.send(group["id"], "a FOX again")
    await alice.send(mine["id"], "nothing to see")
    await carol.send(not_mine["id"], "fox in a chat alice is not in")
    gone = await alice.send(group["id"], "deleted fox")
    await alice.ok("DELETE", f"/api/v1/messages/{gone['id']}")
    found = await alice.ok("GET", "/api/v1/search/messages", params={"q": "fox"})
    assert [m["id"] for m in found] == [second["id"], first["id"]]
    in_chat = await alice.ok(
        "GET", "/api/v1/search/messages", params={"q": "Fox", "chat_id": mine["id"]}
    )
    assert [m["id"] for m in in_chat] == [first["id"]]
    limited = await alice.ok("GET", "/api/v1/search/messages", params={"q": "fox", "limit": 1})
    assert [m["id"] for m in limited] == [second["id"]]


async def test_search_in_a_chat_i_am_not_in_is_404(alice: ApiUser, bob: ApiUser) -> None:
    chat = await bob.create_group("Bob's")
    await bob.send(chat["id"], "hidden words")
    response = await alice.get(
        "/api/v1/search/messages", params={"q": "hidden", "chat_id": chat["id"]}
    )
    assert response.status_code == 404
    assert "hidden words" not in response.text


async def test_search_needs_a_query(alice: ApiUser) -> None:
    assert (await alice.get("/api/v1/search/messages", params={"q": ""})).status_code == 422
    assert (await alice.get("/api/v1/search/messages", params={"q": "   "})).status_code == 422
    assert (await alice.get("/api/v1/search/messages")).status_code == 422


@pytest.mark.postgres
async def test_postgres_search_is_served_by_the_full_text_index(
    alice: ApiUser, bob: ApiUser, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.private_chat_with(bob)
    await alice.send(chat["id"], "indexed words here")
    captured: list[tuple[str, Any]] = []
    engine = app.state.context.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "to_tsvector" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        found = await alice.ok("GET", "/api/v1/search/messages", params={"q": "words"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(found) == 1
    ((statement, parameters),) = captured
    async with sessionmaker() as session, session.begin():
        connection = await session.connection()
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        # With a handful of rows, reading each of the user's chats by its (chat_id, id) index
        # costs less; what is checked is that the text index can serve the search.
        await connection.exec_driver_sql("SET LOCAL enable_nestloop = off")
        plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        plan_text = "\n".join(row[0] for row in plan)
        # The index of each partition of messages is a part of the table's index.
        parts = await connection.exec_driver_sql(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid"
            " WHERE inhparent = 'ix_messages_text_fts'::regclass"
        )
        index_parts = set(parts.scalars())
    assert index_parts
    assert any(f"Index Scan on {part}" in plan_text for part in index_parts)


async def test_search_finds_words_in_any_script(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    await alice.send(chat["id"], "Привет, мир")
    await alice.send(chat["id"], "hello world")
    found = await alice.ok("GET", "/api/v1/search/messages", params={"q": "мир"})
    assert [m["text"] for m in found] == ["Привет, мир"]


async def test_deleted_messages_stay_out_of_unread_counts_and_search(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    message = await alice.send(chat["id"], "gone soon")
    await alice.ok("DELETE", f"/api/v1/messages/{message['id']}")
    (listed,) = await bob.ok("GET", "/api/v1/chats")
    assert listed["unread_count"] == 0
    assert listed["last_message"] is listed["last_message_detail"] is None
    assert await bob.ok("GET", "/api/v1/search/messages", params={"q": "gone"}) == []
