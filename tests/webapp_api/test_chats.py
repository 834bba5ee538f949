"""Chats and members over the native API: types, roles, lists, invitations, settings."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Chat, ChatInvitation, ChatInviteLink
from tests.support.api import ApiUser, sign_up
from tests.support.messaging import chat_row, row_count, stored_events


def _roles(chat: dict[str, object]) -> dict[int, str]:
    members = chat["members"]
    assert isinstance(members, list)
    return {m["id"]: m["role"] for m in members}


async def _ids_in_list(user: ApiUser, path: str = "/api/v1/chats") -> list[int]:
    return [item["id"] for item in await user.ok("GET", path)]


# -- creating chats ---------------------------------------------------------------------------


async def test_creating_a_group_makes_the_creator_owner_and_adds_the_members(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.ok(
        "POST",
        "/api/v1/chats",
        json={
            "chat_type": "group",
            "title": "  Team  ",
            "description": "work",
            "member_ids": [bob.id, carol.id, bob.id, alice.id],
        },
    )
    assert (chat["chat_type"], chat["title"], chat["description"]) == ("group", "Team", "work")
    assert chat["created_by"] == alice.id
    assert _roles(chat) == {alice.id: "owner", bob.id: "member", carol.id: "member"}
    assert {m["id"]: m["is_admin"] for m in chat["members"]} == {
        alice.id: True,
        bob.id: False,
        carol.id: False,
    }
    # Three member_added events were recorded, and the response shows the chat as it is now.
    assert chat["last_seq"] == 3


async def test_an_untitled_group_is_named_after_its_members(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    for title in (None, "", "   "):
        response = await alice.post(
            "/api/v1/chats", json={"chat_type": "group", "title": title, "member_ids": []}
        )
        assert response.status_code == 200, title
        assert response.json()["title"] == "Alice", title
    chat = await alice.create_group("", bob, carol)
    assert chat["title"] == "Bob, Carol"
    shown = await bob.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert shown["title"] == "Alice, Carol"
    listed = {c["id"]: c["title"] for c in await carol.ok("GET", "/api/v1/chats")}
    assert listed == {chat["id"]: "Alice, Bob"}
    found = await carol.ok("GET", "/api/v1/chats/search", params={"q": "bob"})
    assert [c["id"] for c in found] == [chat["id"]]


async def test_member_ids_that_are_no_users_are_skipped_and_named(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.ok(
        "POST",
        "/api/v1/chats",
        json={"chat_type": "group", "title": "X", "member_ids": [bob.id, 999_999, 999_998]},
    )
    assert chat["skipped_member_ids"] == [999_999, 999_998]
    assert _roles(chat) == {alice.id: "owner", bob.id: "member"}
    assert await row_count(sessionmaker, Chat) == 1
    private = await alice.ok(
        "POST", "/api/v1/chats", json={"chat_type": "private", "member_ids": [999_999, bob.id]}
    )
    assert (private["chat_type"], private["skipped_member_ids"]) == ("private", [999_999])
    assert _roles(private).keys() == {alice.id, bob.id}


async def test_a_private_chat_with_someone_is_the_same_chat_every_time(
    alice: ApiUser, bob: ApiUser
) -> None:
    first = await alice.private_chat_with(bob)
    again = await alice.private_chat_with(bob)
    from_bob = await bob.private_chat_with(alice)
    assert first["id"] == again["id"] == from_bob["id"]
    assert first["chat_type"] == "private"
    assert _roles(first).keys() == {alice.id, bob.id}
    # A private chat is titled with the other person's name, for each side.
    assert (first["title"], from_bob["title"]) == ("Bob", "Alice")


async def test_concurrent_requests_for_one_private_chat_create_one(
    alice: ApiUser, bob: ApiUser
) -> None:
    chats = await asyncio.gather(*(alice.private_chat_with(bob) for _ in range(6)))
    assert len({chat["id"] for chat in chats}) == 1
    assert await _ids_in_list(alice) == [chats[0]["id"]]


async def test_a_private_chat_with_no_one_else_is_my_own_saved_messages(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    # What Aeon's client sends when the members field is left empty.
    saved = await alice.ok(
        "POST", "/api/v1/chats", json={"title": "Notes", "chat_type": "private", "member_ids": []}
    )
    assert (saved["chat_type"], saved["title"], saved["skipped_member_ids"]) == (
        "private",
        "Notes",
        [],
    )
    assert _roles(saved).keys() == {alice.id}
    again = await alice.ok(
        "POST", "/api/v1/chats", json={"chat_type": "private", "member_ids": [alice.id, 987_654]}
    )
    assert (again["id"], again["skipped_member_ids"]) == (saved["id"], [987_654])
    untitled = await bob.ok("POST", "/api/v1/chats", json={"chat_type": "private"})
    assert untitled["title"] == "Saved Messages"
    assert await _ids_in_list(alice) == [saved["id"]]
    assert (await bob.get(f"/api/v1/chats/{saved['id']}")).status_code == 404


async def test_a_private_chat_has_at_most_one_other_member(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    response = await alice.post(
        "/api/v1/chats", json={"chat_type": "private", "member_ids": [bob.id, carol.id]}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "private_chat_members"
    assert await _ids_in_list(alice) == []


async def test_the_ai_chat_is_created_once_per_user_with_the_bot(
    alice: ApiUser, bob: ApiUser
) -> None:
    first = await alice.ok("POST", "/api/v1/chats/ai")
    again = await alice.ok("POST", "/api/v1/chats/ai")
    bobs = await bob.ok("POST", "/api/v1/chats/ai")
    assert first["id"] == again["id"] != bobs["id"]
    assert first["chat_type"] == "ai"
    members = {m["id"]: m["is_bot"] for m in first["members"]}
    assert len(members) == 2
    assert members[alice.id] is False
    (bot_id,) = (uid for uid, is_bot in members.items() if is_bot)
    assert bot_id in {m["id"] for m in bobs["members"]}
    listed = await alice.ok("GET", "/api/v1/chats")
    assert [(c["id"], c["chat_type"], c["peer"]["id"]) for c in listed] == [
        (first["id"], "ai", bot_id)
    ]


# -- listing ----------------------------------------------------------------------------------


async def test_the_chat_list_is_ordered_by_last_activity_with_the_last_message(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    older = await alice.create_group("Older", bob)
    private = await alice.private_chat_with(carol)
    newer = await alice.create_group("Newer", bob)
    assert await _ids_in_list(alice) == [newer["id"], private["id"], older["id"]]
    sent = await bob.send(older["id"], "bump")
    listed = await alice.ok("GET", "/api/v1/chats")
    assert [c["id"] for c in listed] == [older["id"], newer["id"], private["id"]]
    top = listed[0]
    assert top["last_message"] == "bump"
    assert top["last_message_detail"]["id"] == sent["id"]
    assert top["last_message_time"] == sent["created_at"]
    assert top["unread_count"] == 1
    assert top["last_seq"] == sent["seq"]
    assert top["last_read_seq"] == 0
    assert (top["is_favorite"], top["is_muted"], top["is_archived"]) == (False, False, False)
    assert top["member_count"] == 2
    assert listed[2]["last_message"] is listed[2]["last_message_detail"] is None
    assert listed[2]["title"] == "Carol"


async def test_each_listed_last_message_is_the_view_its_history_shows(
    alice: ApiUser, bob: ApiUser, carol: ApiUser, dave: ApiUser
) -> None:
    """The list reads its last messages in its own statement: reactions (most given first,
    each emoji's users earliest first, across several chats and pages), readers, senders and
    a deleted last message all show as the history shows them."""
    await alice.create_group("Empty")
    busy = await alice.create_group("Busy", bob, carol, dave)
    message = await bob.send(busy["id"], "vote")
    for user, emoji in ((carol, "b"), (dave, "a"), (alice, "a"), (bob, "c")):
        await user.ok("PUT", f"/api/v1/messages/{message['id']}/reaction", json={"emoji": emoji})
    await carol.ok("POST", f"/api/v1/messages/{message['id']}/read")
    quiet = await alice.private_chat_with(carol)
    kept = await carol.send(quiet["id"], "kept")
    await alice.ok("PUT", f"/api/v1/messages/{kept['id']}/reaction", json={"emoji": "z"})
    gone = await carol.send(quiet["id"], "gone")
    await carol.ok("DELETE", f"/api/v1/messages/{gone['id']}")
    for params in ({}, {"limit": 1}):
        listed = await alice.ok("GET", "/api/v1/chats", params=params)
        for item in listed:
            history = await alice.ok("GET", f"/api/v1/chats/{item['id']}/messages")
            shown = [m for m in history["messages"] if not m["is_deleted"]]
            assert item["last_message_detail"] == (shown[-1] if shown else None)
    (top,) = await alice.ok("GET", "/api/v1/chats", params={"limit": 1})
    assert top["id"] == quiet["id"]
    assert top["last_message"] == "kept"
    assert top["last_message_detail"]["reactions"] == [
        {"emoji": "z", "count": 1, "user_ids": [alice.id]}
    ]
    busy_item = next(i for i in await alice.ok("GET", "/api/v1/chats") if i["id"] == busy["id"])
    assert busy_item["last_message_detail"]["reactions"] == [
        {"emoji": "a", "count": 2, "user_ids": [dave.id, alice.id]},
        {"emoji": "b", "count": 1, "user_ids": [carol.id]},
        {"emoji": "c", "count": 1, "user_ids": [bob.id]},
    ]
    assert busy_item["last_message_detail"]["read_by"] == [carol.id]


async def test_the_chat_list_pages_with_a_cursor(alice: ApiUser) -> None:
    created = [(await alice.create_group(f"G{i}"))["id"] for i in range(5)]
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await alice.get("/api/v1/chats", params=params)
        assert response.status_code == 200
        seen += [c["id"] for c in response.json()]
        pages += 1
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            break
    assert seen == list(reversed(created))
    assert pages == 3


async def test_the_mini_app_origin_may_read_the_next_cursor(alice: ApiUser) -> None:
    for i in range(2):
        await alice.create_group(f"G{i}")
    response = await alice.get(
        "/api/v1/chats", params={"limit": 1}, headers={"Origin": "https://miniapp.example"}
    )
    assert response.headers.get("X-Next-Cursor")
    exposed = response.headers.get("Access-Control-Expose-Headers", "")
    assert "x-next-cursor" in exposed.lower()


async def test_a_malformed_cursor_is_422(alice: ApiUser) -> None:
    response = await alice.get("/api/v1/chats", params={"cursor": "!!not-a-cursor"})
    assert response.status_code == 422


async def test_deleted_chats_and_other_peoples_chats_are_not_listed(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    kept = await alice.create_group("Kept", bob)
    gone = await alice.create_group("Gone", bob)
    await bob.create_group("Bob only", carol)
    await alice.ok("DELETE", f"/api/v1/chats/{gone['id']}")
    assert await _ids_in_list(alice) == [kept["id"]]


async def test_search_finds_my_chats_by_title_or_by_the_other_persons_name(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    team = await alice.create_group("Project Team", bob)
    await alice.create_group("Family")
    with_bob = await alice.private_chat_with(bob)
    await carol.create_group("Project Secret")  # not mine
    assert await _ids_in_list(alice, "/api/v1/chats/search?q=project") == [team["id"]]
    assert await _ids_in_list(alice, "/api/v1/chats/search?q=BOB") == [with_bob["id"]]
    assert await _ids_in_list(alice, "/api/v1/chats?q=team") == [team["id"]]
    assert (await alice.get("/api/v1/chats/search?q=")).status_code == 422


async def test_chat_search_treats_like_wildcards_literally(alice: ApiUser) -> None:
    percent = await alice.create_group("100% done")
    await alice.create_group("Plain")
    assert await _ids_in_list(alice, "/api/v1/chats/search?q=%25") == [percent["id"]]
    assert await _ids_in_list(alice, "/api/v1/chats/search?q=_") == []


# -- one chat ---------------------------------------------------------------------------------


async def test_get_chat_shows_members_in_join_order_and_my_settings(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob)
    shown = await bob.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert [m["id"] for m in shown["members"]] == [alice.id, bob.id]
    assert shown["my_settings"] == {
        "is_favorite": False,
        "is_muted": False,
        "is_archived": False,
        "last_read_seq": 0,
    }


async def test_an_admin_updates_the_group_and_an_event_is_recorded(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Old", bob)
    updated = await alice.ok(
        "PATCH", f"/api/v1/chats/{chat['id']}", json={"title": " New ", "description": "d"}
    )
    assert (updated["title"], updated["description"]) == ("New", "d")
    assert updated["last_seq"] == chat["last_seq"] + 1
    put = await alice.ok("PUT", f"/api/v1/chats/{chat['id']}", json={"photo_url": "https://p/x"})
    assert (put["title"], put["photo_url"]) == ("New", "https://p/x")
    events = await stored_events(sessionmaker, chat["id"])
    assert [e.type for e in events][-2:] == ["chat_updated", "chat_updated"]
    assert events[-1].payload["chat"]["photo_url"] == "https://p/x"


async def test_an_update_that_changes_nothing_records_nothing(
    alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Same")
    await alice.ok("PATCH", f"/api/v1/chats/{chat['id']}", json={"title": "Same"})
    assert len(await stored_events(sessionmaker, chat["id"])) == chat["last_seq"]


async def test_updating_a_group_is_for_admins_only(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    response = await bob.patch(f"/api/v1/chats/{chat['id']}", json={"title": "Mine"})
    assert response.status_code == 403
    assert response.json()["code"] == "not_chat_admin"
    shown = await alice.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert shown["title"] == "Team"


@pytest.mark.parametrize(
    "body", [{"title": ""}, {"title": None}, {"title": "x" * 257}, {"created_by": 1}]
)
async def test_a_bad_group_update_is_422(alice: ApiUser, body: dict[str, object]) -> None:
    chat = await alice.create_group("Team")
    response = await alice.patch(f"/api/v1/chats/{chat['id']}", json=body)
    assert response.status_code == 422


async def test_a_private_chat_has_no_title_to_update(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.private_chat_with(bob)
    response = await alice.patch(f"/api/v1/chats/{chat['id']}", json={"title": "Us"})
    assert response.status_code == 400
    assert response.json()["code"] == "not_a_group"


# -- delete and restore -----------------------------------------------------------------------


async def test_the_owner_deletes_a_group_softly_and_restores_it(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob)
    await alice.send(chat["id"], "kept")
    assert await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}") == {"ok": True}
    for user in (alice, bob):
        assert (await user.get(f"/api/v1/chats/{chat['id']}")).status_code == 404
        assert (await user.get(f"/api/v1/chats/{chat['id']}/messages")).status_code == 404
    assert [e.type for e in await stored_events(sessionmaker, chat["id"])][-1] == "chat_deleted"
    restored = await alice.ok("POST", f"/api/v1/chats/{chat['id']}/restore")
    assert restored["is_active"] is True
    history = await bob.ok("GET", f"/api/v1/chats/{chat['id']}/messages")
    assert [m["text"] for m in history["messages"]] == ["kept"]
    assert [e.type for e in await stored_events(sessionmaker, chat["id"])][-1] == "chat_updated"


async def test_only_the_owner_deletes_or_restores_a_group(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    await alice.ok("PATCH", f"/api/v1/chats/{chat['id']}/members/{bob.id}", json={"role": "admin"})
    response = await bob.delete(f"/api/v1/chats/{chat['id']}")
    assert response.status_code == 403
    assert response.json()["code"] == "not_chat_owner"
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}")
    response = await bob.post(f"/api/v1/chats/{chat['id']}/restore")
    assert response.status_code == 403


async def test_a_chat_deleted_more_than_30_days_ago_cannot_be_restored(
    alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Old")
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}")
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Chat)
            .where(Chat.id == chat["id"])
            .values(deleted_at=datetime.now(UTC) - timedelta(days=31))
        )
    response = await alice.post(f"/api/v1/chats/{chat['id']}/restore")
    assert response.status_code == 409
    assert response.json()["code"] == "restore_window_passed"
    assert (await alice.get(f"/api/v1/chats/{chat['id']}")).status_code == 404


async def test_a_chat_deleted_29_days_ago_can_still_be_restored(
    alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Recent")
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}")
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Chat)
            .where(Chat.id == chat["id"])
            .values(deleted_at=datetime.now(UTC) - timedelta(days=29))
        )
    assert (await alice.ok("POST", f"/api/v1/chats/{chat['id']}/restore"))["is_active"] is True


async def test_deleting_a_private_chat_then_asking_for_it_again_brings_it_back(
    alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    await bob.send(chat["id"], "hi")
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}")
    assert await _ids_in_list(bob) == []
    again = await bob.private_chat_with(alice)
    assert again["id"] == chat["id"]
    assert await _ids_in_list(alice) == [chat["id"]]


# -- members ----------------------------------------------------------------------------------


async def test_an_admin_adds_a_member_who_then_sees_the_chat(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team")
    updated = await alice.ok("POST", f"/api/v1/chats/{chat['id']}/members/{bob.id}")
    assert _roles(updated) == {alice.id: "owner", bob.id: "member"}
    assert await _ids_in_list(bob) == [chat["id"]]


async def test_adding_an_existing_member_is_400(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    response = await alice.post(f"/api/v1/chats/{chat['id']}/members/{bob.id}")
    assert response.status_code == 400
    assert response.json()["code"] == "already_member"


async def test_adding_an_unknown_user_is_404(alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    response = await alice.post(f"/api/v1/chats/{chat['id']}/members/999999")
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"


async def test_a_plain_member_cannot_add_or_remove_members(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    assert (await bob.post(f"/api/v1/chats/{chat['id']}/members/999")).status_code == 403
    assert (await bob.delete(f"/api/v1/chats/{chat['id']}/members/{carol.id}")).status_code == 403
    assert len((await alice.ok("GET", f"/api/v1/chats/{chat['id']}"))["members"]) == 3


async def test_members_cannot_be_added_to_a_private_chat(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    response = await alice.post(f"/api/v1/chats/{chat['id']}/members/{carol.id}")
    assert response.status_code == 400
    assert response.json()["code"] == "not_a_group"


async def test_a_removed_member_loses_access_at_once(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob)
    message = await alice.send(chat["id"], "before")
    assert await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{bob.id}") == {"ok": True}
    assert (await bob.get(f"/api/v1/chats/{chat['id']}")).status_code == 404
    assert (await bob.get(f"/api/v1/chats/{chat['id']}/messages")).status_code == 404
    assert (
        await bob.put(f"/api/v1/messages/{message['id']}/reaction", json={"emoji": "x"})
    ).status_code == 404
    assert await _ids_in_list(bob) == []
    event = (await stored_events(sessionmaker, chat["id"]))[-1]
    assert (event.type, event.payload) == ("member_removed", {"user_id": bob.id})


async def test_only_the_owner_removes_an_admin_and_nobody_removes_the_owner(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    for user in (bob, carol):
        await alice.ok(
            "PATCH", f"/api/v1/chats/{chat['id']}/members/{user.id}", json={"role": "admin"}
        )
    response = await bob.delete(f"/api/v1/chats/{chat['id']}/members/{carol.id}")
    assert response.status_code == 403
    response = await bob.delete(f"/api/v1/chats/{chat['id']}/members/{alice.id}")
    assert response.status_code == 403
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{carol.id}")
    assert _roles(await alice.ok("GET", f"/api/v1/chats/{chat['id']}")) == {
        alice.id: "owner",
        bob.id: "admin",
    }


async def test_removing_a_non_member_is_404(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team")
    response = await alice.delete(f"/api/v1/chats/{chat['id']}/members/{bob.id}")
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"


async def test_a_member_removes_themself_to_leave(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    await bob.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{bob.id}")
    assert await _ids_in_list(bob) == []
    assert _roles(await alice.ok("GET", f"/api/v1/chats/{chat['id']}")) == {alice.id: "owner"}


async def test_leaving_a_group(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    assert await bob.ok("POST", f"/api/v1/chats/{chat['id']}/leave") == {"ok": True}
    assert (await bob.get(f"/api/v1/chats/{chat['id']}")).status_code == 404
    assert (await bob.post(f"/api/v1/chats/{chat['id']}/leave")).status_code == 404


async def test_when_the_owner_leaves_the_longest_standing_admin_becomes_owner(
    alice: ApiUser, bob: ApiUser, carol: ApiUser, dave: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol, dave)
    for user in (dave, carol):
        await alice.ok(
            "PATCH", f"/api/v1/chats/{chat['id']}/members/{user.id}", json={"role": "admin"}
        )
    await alice.ok("POST", f"/api/v1/chats/{chat['id']}/leave")
    assert _roles(await bob.ok("GET", f"/api/v1/chats/{chat['id']}")) == {
        bob.id: "member",
        carol.id: "owner",
        dave.id: "admin",
    }


async def test_when_the_last_member_leaves_the_group_is_closed(
    alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Solo")
    await alice.ok("POST", f"/api/v1/chats/{chat['id']}/leave")
    assert (await chat_row(sessionmaker, chat["id"])).is_active is False


async def test_private_and_ai_chats_cannot_be_left(alice: ApiUser, bob: ApiUser) -> None:
    private = await alice.private_chat_with(bob)
    ai = await alice.ok("POST", "/api/v1/chats/ai")
    for chat in (private, ai):
        response = await alice.post(f"/api/v1/chats/{chat['id']}/leave")
        assert response.status_code == 400
        assert response.json()["code"] == "not_a_group"


# -- roles ------------------------------------------------------------------------------------


async def test_the_owner_makes_an_admin_who_can_then_manage_members(
    alice: ApiUser, bob: ApiUser, carol: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob)
    member = await alice.ok(
        "PATCH", f"/api/v1/chats/{chat['id']}/members/{bob.id}", json={"role": "admin"}
    )
    assert (member["id"], member["role"], member["is_admin"]) == (bob.id, "admin", True)
    event = (await stored_events(sessionmaker, chat["id"]))[-1]
    assert (event.type, event.payload) == ("member_updated", {"user_id": bob.id, "role": "admin"})
    await bob.ok("POST", f"/api/v1/chats/{chat['id']}/members/{carol.id}")


async def test_making_someone_owner_hands_ownership_over(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    await alice.ok("PATCH", f"/api/v1/chats/{chat['id']}/members/{bob.id}", json={"role": "owner"})
    assert _roles(await alice.ok("GET", f"/api/v1/chats/{chat['id']}")) == {
        alice.id: "admin",
        bob.id: "owner",
    }
    response = await alice.patch(
        f"/api/v1/chats/{chat['id']}/members/{bob.id}", json={"role": "member"}
    )
    assert response.status_code == 403


async def test_only_the_owner_sets_roles(alice: ApiUser, bob: ApiUser, carol: ApiUser) -> None:
    chat = await alice.create_group("Team", bob, carol)
    await alice.ok("PATCH", f"/api/v1/chats/{chat['id']}/members/{bob.id}", json={"role": "admin"})
    response = await bob.patch(
        f"/api/v1/chats/{chat['id']}/members/{carol.id}", json={"role": "admin"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "not_chat_owner"


async def test_bad_role_changes_are_refused(alice: ApiUser, bob: ApiUser, carol: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    base = f"/api/v1/chats/{chat['id']}/members"
    assert (await alice.patch(f"{base}/{bob.id}", json={"role": "god"})).status_code == 422
    assert (await alice.patch(f"{base}/{carol.id}", json={"role": "admin"})).status_code == 404
    assert (await alice.patch(f"{base}/{alice.id}", json={"role": "member"})).status_code == 400


# -- invitations ------------------------------------------------------------------------------


async def test_inviting_a_known_username_adds_them(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team")
    result = await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", json={"username": " @BOB "}
    )
    assert result == {"message": "User added to the chat", "status": "added"}
    assert await _ids_in_list(bob) == [chat["id"]]


async def test_an_invitation_for_an_unknown_username_is_accepted_at_first_sign_in(
    client: httpx.AsyncClient,
    alice: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    chat = await alice.create_group("Team")
    result = await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", json={"username": "@Newbie"}
    )
    assert result["status"] == "invited"
    # Inviting twice keeps one invitation.
    await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", json={"username": "newbie"}
    )
    assert await row_count(sessionmaker, ChatInvitation) == 1
    newbie = await sign_up(client, 555, "New", "NewBie")
    assert await _ids_in_list(newbie) == [chat["id"]]
    assert _roles(await alice.ok("GET", f"/api/v1/chats/{chat['id']}"))[newbie.id] == "member"
    assert await row_count(sessionmaker, ChatInvitation) == 0


async def test_check_invitations_accepts_an_invitation_left_for_me_and_returns_me(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team")
    # An invitation for bob's username, stored while bob was signing in (so not accepted then).
    async with sessionmaker() as session, session.begin():
        session.add(ChatInvitation(chat_id=chat["id"], username="bob", invited_by=alice.id))
    me = await bob.ok("POST", "/api/v1/users/check-invitations/")
    assert (me["id"], me["username"]) == (bob.id, "bob")
    assert await _ids_in_list(bob) == [chat["id"]]
    assert await row_count(sessionmaker, ChatInvitation) == 0
    again = await bob.ok("POST", "/api/v1/users/check-invitations")
    assert again["id"] == bob.id


async def test_inviting_is_for_admins_and_needs_a_username(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    path = f"/api/v1/chats/{chat['id']}/invite-by-username"
    assert (await bob.post(path, json={"username": "someone"})).status_code == 403
    assert (await alice.post(path, json={"username": "@"})).status_code == 422
    assert (await alice.post(path, json={})).status_code == 422


async def test_an_invite_link_lets_anyone_join_until_it_is_revoked(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team")
    link = await alice.ok("POST", f"/api/v1/chats/{chat['id']}/invite-link")
    # Telegram takes a startapp parameter of up to 64 of A-Z, a-z, 0-9, _ and -.
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", link["start_param"])
    assert link["start_param"] == f"join_{link['token']}"
    assert link["expires_at"] is None
    joined = await bob.ok("POST", f"/api/v1/join/{link['token']}")
    assert joined["id"] == chat["id"]
    assert _roles(joined)[bob.id] == "member"
    again = await bob.ok("POST", f"/api/v1/join/{link['token']}")  # joining twice is harmless
    assert len(again["members"]) == 2
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/invite-link/{link['token']}")
    response = await carol.post(f"/api/v1/join/{link['token']}")
    assert response.status_code == 404
    assert await _ids_in_list(carol) == []


async def test_an_expired_invite_link_does_not_work(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team")
    link = await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-link", json={"expires_in_seconds": 3600}
    )
    expires_at = datetime.fromisoformat(link["expires_at"])
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(ChatInviteLink)
            .where(ChatInviteLink.token == link["token"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = await bob.post(f"/api/v1/join/{link['token']}")
    assert response.status_code == 404
    assert response.json()["code"] == "invite_link_expired"


async def test_invite_links_are_for_admins_of_groups(alice: ApiUser, bob: ApiUser) -> None:
    group = await alice.create_group("Team", bob)
    private = await alice.private_chat_with(bob)
    assert (await bob.post(f"/api/v1/chats/{group['id']}/invite-link")).status_code == 403
    assert (await alice.post(f"/api/v1/chats/{private['id']}/invite-link")).status_code == 400
    link = await alice.ok("POST", f"/api/v1/chats/{group['id']}/invite-link")
    revoke = await bob.delete(f"/api/v1/chats/{group['id']}/invite-link/{link['token']}")
    assert revoke.status_code == 403


async def test_a_token_of_another_chat_cannot_be_revoked_through_this_one(
    alice: ApiUser, bob: ApiUser
) -> None:
    mine = await alice.create_group("Mine")
    theirs = await bob.create_group("Theirs")
    link = await bob.ok("POST", f"/api/v1/chats/{theirs['id']}/invite-link")
    response = await alice.delete(f"/api/v1/chats/{mine['id']}/invite-link/{link['token']}")
    assert response.status_code == 404
    await alice.ok("POST", f"/api/v1/join/{link['token']}")


async def test_an_unknown_or_deleted_chats_invite_link_is_404(alice: ApiUser, bob: ApiUser) -> None:
    assert (await bob.post("/api/v1/join/no-such-token")).status_code == 404
    chat = await alice.create_group("Team")
    link = await alice.ok("POST", f"/api/v1/chats/{chat['id']}/invite-link")
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}")
    assert (await bob.post(f"/api/v1/join/{link['token']}")).status_code == 404


# -- my settings ------------------------------------------------------------------------------


async def test_my_chat_settings_are_mine_alone(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    settings = await alice.ok(
        "PATCH", f"/api/v1/chats/{chat['id']}/settings", json={"is_favorite": True}
    )
    assert settings == {
        "is_favorite": True,
        "is_muted": False,
        "is_archived": False,
        "last_read_seq": 0,
    }
    await alice.ok(
        "PATCH",
        f"/api/v1/chats/{chat['id']}/settings",
        json={"is_muted": True, "is_archived": True},
    )
    (mine,) = await alice.ok("GET", "/api/v1/chats")
    assert (mine["is_favorite"], mine["is_muted"], mine["is_archived"]) == (True, True, True)
    (bobs,) = await bob.ok("GET", "/api/v1/chats")
    assert (bobs["is_favorite"], bobs["is_muted"], bobs["is_archived"]) == (False, False, False)
    shown = await alice.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert shown["my_settings"]["is_archived"] is True


async def test_unknown_or_null_settings_are_422(alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    path = f"/api/v1/chats/{chat['id']}/settings"
    assert (await alice.patch(path, json={"role": "owner"})).status_code == 422
    assert (await alice.patch(path, json={"is_muted": None})).status_code == 422


# -- users ------------------------------------------------------------------------------------


async def test_a_user_is_found_by_username(alice: ApiUser, bob: ApiUser) -> None:
    found = await alice.ok("GET", "/api/v1/users/by-username/@BOB")
    assert (found["id"], found["first_name"], found["username"]) == (bob.id, "Bob", "bob")
    assert (await alice.get("/api/v1/users/by-username/nobody")).status_code == 404


async def test_concurrent_joins_by_one_link_add_the_member_once(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team")
    link = await alice.ok("POST", f"/api/v1/chats/{chat['id']}/invite-link")
    responses = await asyncio.gather(*(bob.post(f"/api/v1/join/{link['token']}") for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert _roles(await alice.ok("GET", f"/api/v1/chats/{chat['id']}")) == {
        alice.id: "owner",
        bob.id: "member",
    }
    added = [e for e in await stored_events(sessionmaker, chat["id"]) if e.type == "member_added"]
    assert [e.payload["user_id"] for e in added] == [alice.id, bob.id]


async def test_concurrent_adds_of_one_user_add_them_once(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team")
    responses = await asyncio.gather(
        *(alice.post(f"/api/v1/chats/{chat['id']}/members/{bob.id}") for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [200] + [400] * 5
    added = [e for e in await stored_events(sessionmaker, chat["id"]) if e.type == "member_added"]
    assert [e.payload["user_id"] for e in added] == [alice.id, bob.id]


async def test_concurrent_removals_of_one_member_remove_them_once(
    alice: ApiUser, bob: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team", bob)
    responses = await asyncio.gather(
        *(alice.delete(f"/api/v1/chats/{chat['id']}/members/{bob.id}") for _ in range(3)),
        *(bob.post(f"/api/v1/chats/{chat['id']}/leave") for _ in range(3)),
    )
    assert sorted(r.status_code for r in responses) == [200] + [404] * 5
    removed = [
        e for e in await stored_events(sessionmaker, chat["id"]) if e.type == "member_removed"
    ]
    assert [e.payload["user_id"] for e in removed] == [bob.id]


async def test_concurrent_first_requests_of_an_invited_user_join_them_once(
    client: httpx.AsyncClient, alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    chat = await alice.create_group("Team")
    await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-by-username", json={"username": "newbie"}
    )
    newbie = ApiUser(client, 555, "New", "newbie")
    responses = await asyncio.gather(*(newbie.get("/api/v1/me") for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    added = [e for e in await stored_events(sessionmaker, chat["id"]) if e.type == "member_added"]
    assert [e.payload["user_id"] for e in added] == [alice.id, responses[0].json()["id"]]
    assert await row_count(sessionmaker, ChatInvitation) == 0


async def test_concurrent_handovers_leave_exactly_one_owner(
    alice: ApiUser, bob: ApiUser, carol: ApiUser, dave: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol, dave)
    base = f"/api/v1/chats/{chat['id']}/members"
    responses = await asyncio.gather(
        *(alice.patch(f"{base}/{user.id}", json={"role": "owner"}) for user in (bob, carol, dave))
    )
    assert sorted(r.status_code for r in responses) == [200, 403, 403]
    roles = _roles(await alice.ok("GET", f"/api/v1/chats/{chat['id']}"))
    assert sorted(roles.values()) == ["admin", "member", "member", "owner"]
    assert roles[alice.id] == "admin"
