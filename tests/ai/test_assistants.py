"""Assistants through the routes: CRUD, who sees what (404 to everyone else, on every route),
the catalogue, conversations answered with the assistant's instructions and model, groups that
take one as their AI, ratings and the owner's usage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Assistant, Chat
from services.ai.context import DEFAULT_PERSONA
from tests.ai.conftest import TINY_MAX_OUTPUT, TINY_MODEL
from tests.ai.helpers import bot_message, follow_reply, socket_of
from tests.ai.test_context import system_of
from tests.media.samples import png_bytes
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer

INSTRUCTIONS = "You are Captain Nemo. Answer every question like a submarine captain."


async def create(owner: ApiUser, **fields: Any) -> dict[str, Any]:
    body = {"name": "Nemo", "instructions": INSTRUCTIONS, "visibility": "private", **fields}
    assistant: dict[str, Any] = await owner.ok("POST", "/api/v1/assistants", json=body)
    return assistant


async def history(user: ApiUser, chat_id: int) -> list[dict[str, Any]]:
    page = await user.ok("GET", f"/api/v1/messages/chat/{chat_id}")
    messages: list[dict[str, Any]] = page["messages"]
    return messages


async def count_assistants(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Assistant)) or 0)


# -- CRUD ------------------------------------------------------------------------------------------


async def test_an_owner_creates_reads_edits_and_archives_an_assistant(
    server: LiveServer, alice: ApiUser
) -> None:
    created = await create(
        alice,
        description="Talks like a captain",
        model=TINY_MODEL,
        greeting="Welcome aboard!",
        temperature=0.3,
        max_reply_tokens=32,
        visibility="link",
    )
    assert isinstance(created["id"], int)
    assert created["id"] > 0
    assert created["owner_id"] == alice.id
    assert isinstance(created["owner_id"], int)
    assert created["name"] == "Nemo"
    assert created["instructions"] == INSTRUCTIONS
    assert created["model"] == TINY_MODEL
    assert created["visibility"] == "link"
    assert created["temperature"] == 0.3
    assert isinstance(created["temperature"], float)
    assert created["max_reply_tokens"] == 32
    assert created["uses"] == 0
    assert created["is_mine"] is True
    assert created["archived"] is False
    token = created["share_token"]
    assert isinstance(token, str)
    assert len(token) >= 32
    assert created["start_param"] == f"assistant_{created['id']}_{token}"
    assert len(created["start_param"]) <= 64
    assert created["url"] is None  # no WEBAPP_URL in the tests' settings

    path = f"/api/v1/assistants/{created['id']}"
    assert (await alice.ok("GET", path))["name"] == "Nemo"
    edited = await alice.ok("PATCH", path, json={"name": "Nemo II", "model": None})
    assert edited["name"] == "Nemo II"
    assert edited["model"] is None
    assert edited["instructions"] == INSTRUCTIONS
    assert edited["greeting"] == "Welcome aboard!"
    archived = await alice.ok("DELETE", path)
    assert archived["archived"] is True
    assert (await alice.ok("GET", path))["archived"] is True  # still its owner's


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "instructions": "x"},
        {"name": "x" * 65, "instructions": "x"},
        {"name": "x", "instructions": ""},
        {"name": "x", "instructions": "x", "visibility": "secret"},
        {"name": "x", "instructions": "x", "temperature": 3},
        {"name": "x", "instructions": "x", "temperature": True},
        {"name": "x", "instructions": "x", "max_reply_tokens": 1.5},
        {"name": "x", "instructions": "x", "extra": 1},
        {"name": "   ", "instructions": "x"},
    ],
)
async def test_bad_input_is_refused_and_nothing_is_created(
    server: LiveServer,
    alice: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
) -> None:
    response = await alice.post("/api/v1/assistants", json=body)
    assert response.status_code == 422, response.text
    assert await count_assistants(sessionmaker) == 0


async def test_unknown_models_and_foreign_avatars_are_refused_and_nothing_changes(
    server: LiveServer, alice: ApiUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    for model in ("no-such-model", "whisper-1"):  # unknown; not a chat model
        refused = await alice.post(
            "/api/v1/assistants", json={"name": "x", "instructions": "x", "model": model}
        )
        assert refused.status_code == 400
        assert refused.json()["code"] == "unknown_model"
    assistant = await create(alice)
    path = f"/api/v1/assistants/{assistant['id']}"
    refused = await alice.patch(path, json={"name": "Other", "avatar_media_id": 999_999})
    assert refused.status_code == 404
    assert refused.json()["code"] == "media_not_found"
    assert (await alice.ok("GET", path))["name"] == "Nemo"
    assert await count_assistants(sessionmaker) == 1


async def test_an_avatar_is_a_photo_its_owner_uploaded(
    server: LiveServer, alice: ApiUser, bob: ApiUser
) -> None:
    photo = await alice.ok(
        "POST", "/api/v1/media", files={"file": ("a.png", png_bytes(), "image/png")}
    )
    others = await bob.ok(
        "POST", "/api/v1/media", files={"file": ("b.png", png_bytes(), "image/png")}
    )
    document = await alice.ok(
        "POST", "/api/v1/media", files={"file": ("a.txt", b"plain text", "text/plain")}
    )
    assistant = await create(alice, avatar_media_id=photo["id"])
    assert assistant["avatar_media_id"] == photo["id"]
    path = f"/api/v1/assistants/{assistant['id']}"
    refused = await alice.patch(path, json={"avatar_media_id": others["id"]})
    assert refused.status_code == 404
    refused = await alice.patch(path, json={"avatar_media_id": document["id"]})
    assert refused.status_code == 400
    assert refused.json()["code"] == "avatar_not_photo"
    assert (await alice.ok("GET", path))["avatar_media_id"] == photo["id"]
    cleared = await alice.ok("PATCH", path, json={"avatar_media_id": None})
    assert cleared["avatar_media_id"] is None


# -- visibility ------------------------------------------------------------------------------------

EXPECTED = {  # visibility -> (other without the token, other with it) may see it
    "private": (False, False),
    "link": (False, True),
    "public": (True, True),
}


@pytest.mark.parametrize("visibility", ["private", "link", "public"])
async def test_who_sees_an_assistant_on_every_route(
    server: LiveServer, alice: ApiUser, bob: ApiUser, visibility: str
) -> None:
    assistant = await create(alice, visibility=visibility)
    token = assistant["share_token"]
    path = f"/api/v1/assistants/{assistant['id']}"
    bob_group = await bob.create_group("Bob's team")
    for with_token, allowed in zip((False, True), EXPECTED[visibility], strict=True):
        query = {"share_token": token} if with_token else {}
        expected = 200 if allowed else 404
        seen = await bob.get(path, params=query)
        assert seen.status_code == expected, (with_token, seen.text)
        if allowed:
            assert seen.json()["share_token"] is None
            assert seen.json()["is_mine"] is False
        else:
            assert seen.json()["code"] == "assistant_not_found"
        chat = await bob.post(f"{path}/chat", json=query)
        assert chat.status_code == expected, chat.text
        group = await bob.post(
            f"/api/v1/chats/{bob_group['id']}/assistant",
            json={"assistant_id": assistant["id"], **query},
        )
        assert group.status_code == expected, group.text
        # The owner's routes: 404 for anyone else, token or not.
        for method, route in (("PATCH", path), ("GET", f"{path}/usage"), ("DELETE", path)):
            refused = await bob.request(
                method,
                route,
                params=query,
                json={"name": "Mine now"} if method == "PATCH" else None,
            )
            assert refused.status_code == 404, (method, route, refused.text)
    # A wrong token is no token.
    wrong = await bob.get(path, params={"share_token": "x" * 32})
    assert wrong.status_code == (200 if visibility == "public" else 404)
    mine = await alice.ok("GET", path)
    assert mine["name"] == "Nemo"
    assert mine["archived"] is False
    assert mine["is_mine"] is True
    assert (await alice.ok("GET", f"{path}/usage"))["conversations"] == (
        1 if visibility != "private" else 0
    )


async def test_an_archived_assistant_is_its_owners_only_and_takes_no_new_chats(
    server: LiveServer, alice: ApiUser, bob: ApiUser
) -> None:
    assistant = await create(alice, visibility="public")
    path = f"/api/v1/assistants/{assistant['id']}"
    await alice.ok("DELETE", path)
    assert (await bob.get(path)).status_code == 404
    assert (await bob.post(f"{path}/chat")).status_code == 404
    refused = await alice.post(f"{path}/chat")
    assert refused.status_code == 409
    assert refused.json()["code"] == "assistant_archived"
    catalogue = await bob.ok("GET", "/api/v1/assistants")
    assert catalogue == []
    mine = await alice.ok("GET", "/api/v1/assistants", params={"owner": "me"})
    assert [a["id"] for a in mine] == [assistant["id"]]
    assert mine[0]["archived"] is True


# -- the catalogue ---------------------------------------------------------------------------------


async def test_the_catalogue_lists_public_assistants_by_use_with_search_and_pages(
    server: LiveServer, alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    quiet = await create(alice, name="Quiet chef", description="Recipes", visibility="public")
    busy = await create(alice, name="Busy tutor", description="Maths help", visibility="public")
    await create(alice, name="Secret chef", visibility="private")
    await create(alice, name="Linked chef", visibility="link")
    for user in (bob, carol):
        await user.ok("POST", f"/api/v1/assistants/{busy['id']}/chat")

    listed = await bob.ok("GET", "/api/v1/assistants")
    assert [a["id"] for a in listed] == [busy["id"], quiet["id"]]
    assert listed[0]["uses"] == 2
    assert isinstance(listed[0]["uses"], int)
    found = await bob.ok("GET", "/api/v1/assistants", params={"query": "CHEF"})
    assert [a["name"] for a in found] == ["Quiet chef"]
    by_description = await bob.ok("GET", "/api/v1/assistants", params={"query": "maths"})
    assert [a["id"] for a in by_description] == [busy["id"]]
    assert await bob.ok("GET", "/api/v1/assistants", params={"query": "%"}) == []

    first = await bob.get("/api/v1/assistants", params={"limit": 1})
    assert [a["id"] for a in first.json()] == [busy["id"]]
    cursor = first.headers["X-Next-Cursor"]
    second = await bob.get("/api/v1/assistants", params={"limit": 1, "cursor": cursor})
    assert [a["id"] for a in second.json()] == [quiet["id"]]
    assert "X-Next-Cursor" not in second.headers
    bad = await bob.get("/api/v1/assistants", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422

    mine = await alice.ok("GET", "/api/v1/assistants", params={"owner": "me"})
    assert len(mine) == 4
    assert all(a["share_token"] for a in mine)
    assert await bob.ok("GET", "/api/v1/assistants", params={"owner": "me"}) == []
    assert (await bob.get("/api/v1/assistants", params={"owner": "you"})).status_code == 422


# -- conversations ---------------------------------------------------------------------------------


async def test_starting_a_chat_is_idempotent_and_opens_with_the_greeting(
    server: LiveServer, alice: ApiUser, bob: ApiUser
) -> None:
    assistant = await create(alice, visibility="public", greeting="Welcome aboard!")
    path = f"/api/v1/assistants/{assistant['id']}/chat"
    first, second = await asyncio.gather(bob.post(path), bob.post(path))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    chat = first.json()
    assert chat["id"] == second.json()["id"]
    assert (await bob.ok("POST", path))["id"] == chat["id"]
    assert chat["chat_type"] == "ai"
    assert chat["title"] == "Nemo"
    assert chat["assistant_id"] == assistant["id"]
    assert chat["assistant"] == {"id": assistant["id"], "name": "Nemo", "avatar_media_id": None}
    messages = await history(bob, chat["id"])
    assert [m["text"] for m in messages] == ["Welcome aboard!"]
    assert messages[0]["sender"]["is_bot"] is True
    usage = await alice.ok("GET", f"/api/v1/assistants/{assistant['id']}/usage")
    assert usage["conversations"] == 1
    # The built-in AI chat is another chat.
    builtin = await bob.ok("POST", "/api/v1/chats/ai")
    assert builtin["id"] != chat["id"]
    assert builtin["assistant_id"] is None


async def test_the_assistant_answers_with_its_instructions_model_and_limits(
    server: LiveServer,
    fake_llm: FakeLLM,
    alice: ApiUser,
    bob: ApiUser,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assistant = await create(
        alice, visibility="link", model=TINY_MODEL, temperature=0.3, max_reply_tokens=32
    )
    chat = await bob.ok(
        "POST",
        f"/api/v1/assistants/{assistant['id']}/chat",
        json={"share_token": assistant["share_token"]},
    )
    fake_llm.script(FakeReply(text="Aye, the sea is deep."))
    async with socket_of(server, bob) as ws:
        await bob.send(chat["id"], "How deep is the sea?")
        reply = await follow_reply(ws)
        message = await bot_message(ws)
    assert reply.end["type"] == "ai_reply_done"
    assert message["text"] == "Aye, the sea is deep."
    request = fake_llm.requests[-1]
    assert request.json["model"] == "tiny-context-1"
    assert request.json["max_completion_tokens"] == 32 < TINY_MAX_OUTPUT
    assert request.json["temperature"] == 0.3
    system = system_of(request)
    assert INSTRUCTIONS in system
    assert DEFAULT_PERSONA not in system

    usage = await alice.ok("GET", f"/api/v1/assistants/{assistant['id']}/usage")
    assert usage["messages"] == 1
    assert isinstance(usage["messages"], int)
    assert isinstance(usage["cost_micros"], int)
    assert usage["cost_micros"] > 0
    async with sessionmaker() as session:
        stored = await session.get(Chat, chat["id"])
        assert stored is not None
        assert stored.assistant_id == assistant["id"]


async def test_an_archived_assistants_chat_is_told_so(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    assistant = await create(alice, visibility="public")
    chat = await bob.ok("POST", f"/api/v1/assistants/{assistant['id']}/chat")
    await alice.ok("DELETE", f"/api/v1/assistants/{assistant['id']}")
    refused = await bob.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "Hello?"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "assistant_archived"
    assert await history(bob, chat["id"]) == []
    assert fake_llm.requests == []


# -- groups ----------------------------------------------------------------------------------------


async def test_a_group_takes_an_assistant_as_its_ai_and_goes_back(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    assistant = await create(alice, visibility="public", model=TINY_MODEL)
    group = await bob.create_group("Crew", alice)
    route = f"/api/v1/chats/{group['id']}/assistant"
    refused = await alice.post(route, json={"assistant_id": assistant["id"]})
    assert refused.status_code == 403  # a member, not an admin
    for bad in ({}, {"assistant_id": 0}, {"assistant_id": "x"}, {"assistant_id": True}):
        assert (await bob.post(route, json=bad)).status_code == 422
    private = await bob.private_chat_with(alice)
    not_group = await bob.post(
        f"/api/v1/chats/{private['id']}/assistant", json={"assistant_id": assistant["id"]}
    )
    assert not_group.status_code == 400
    assert not_group.json()["code"] == "not_a_group"

    chat = await bob.ok("POST", route, json={"assistant_id": assistant["id"]})
    assert chat["assistant_id"] == assistant["id"]
    assert any(member["is_bot"] for member in chat["members"])  # the bot joined
    async with socket_of(server, bob) as ws:
        await bob.send(group["id"], "/ask how deep is the sea?")
        await bot_message(ws)
    request = fake_llm.requests[-1]
    assert request.json["model"] == "tiny-context-1"
    assert INSTRUCTIONS in system_of(request)

    cleared = await bob.ok("DELETE", route)
    assert cleared["assistant_id"] is None
    assert cleared["assistant"] is None
    async with socket_of(server, bob) as ws:
        await bob.send(group["id"], "/ask and now?")
        await bot_message(ws)
    assert INSTRUCTIONS not in system_of(fake_llm.requests[-1])


async def test_a_group_whose_assistant_was_archived_is_told_so(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    assistant = await create(alice, visibility="public")
    group = await bob.create_group("Crew")
    route = f"/api/v1/chats/{group['id']}/assistant"
    await bob.ok("POST", route, json={"assistant_id": assistant["id"]})
    await alice.ok("DELETE", f"/api/v1/assistants/{assistant['id']}")
    async with socket_of(server, bob) as ws:
        sent = await bob.send(group["id"], "/ask anyone there?")
        refused = await ws.wait_for("ai_reply_failed")
    assert refused["code"] == "assistant_archived"
    assert refused["reply_to_message_id"] == sent["id"]
    assert fake_llm.requests == []
    # Its admins may go back to the built-in AI; nobody may choose the archived one again.
    again = await bob.post(route, json={"assistant_id": assistant["id"]})
    assert again.status_code == 404
    assert (await bob.ok("DELETE", route))["assistant_id"] is None


# -- ratings ---------------------------------------------------------------------------------------


async def test_ratings_of_ai_replies_and_the_owners_usage(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    assistant = await create(alice, visibility="public")
    chat = await bob.ok("POST", f"/api/v1/assistants/{assistant['id']}/chat")
    async with socket_of(server, bob) as ws:
        mine = await bob.send(chat["id"], "Hello")
        answer = await bot_message(ws)
    rating = f"/api/v1/chats/{chat['id']}/messages/{answer['id']}/rating"

    rated = await bob.ok("PUT", rating, json={"value": "down", "comment": "Too salty"})
    assert rated == {
        "message_id": answer["id"],
        "chat_id": chat["id"],
        "value": "down",
        "comment": "Too salty",
        "assistant_id": assistant["id"],
    }
    replaced = await bob.ok("PUT", rating, json={"value": "up", "comment": "Better now"})
    assert replaced["value"] == "up"
    # Only AI messages; only members; bounded input.
    own = await bob.put(
        f"/api/v1/chats/{chat['id']}/messages/{mine['id']}/rating", json={"value": "up"}
    )
    assert own.status_code == 400
    assert own.json()["code"] == "not_ai_message"
    assert (await carol.put(rating, json={"value": "up"})).status_code == 404
    assert (await carol.delete(rating)).status_code == 404
    for bad in ({"value": "meh"}, {"value": 1}, {"value": "up", "comment": "x" * 1001}, {}):
        assert (await bob.put(rating, json=bad)).status_code == 422
    missing = f"/api/v1/chats/{chat['id']}/messages/{answer['id'] + 1000}/rating"
    assert (await bob.put(missing, json={"value": "up"})).status_code == 404

    usage = await alice.ok("GET", f"/api/v1/assistants/{assistant['id']}/usage")
    assert usage["ratings"] == {"up": 1, "down": 0}
    assert [c["comment"] for c in usage["recent_comments"]] == ["Better now"]
    assert usage["recent_comments"][0]["value"] == 1
    assert usage["conversations"] == 1
    assert usage["messages"] == 1

    assert await bob.ok("DELETE", rating) == {"ok": True}
    assert (await bob.delete(rating)).status_code == 404
    usage = await alice.ok("GET", f"/api/v1/assistants/{assistant['id']}/usage")
    assert usage["ratings"] == {"up": 0, "down": 0}
    assert usage["recent_comments"] == []
