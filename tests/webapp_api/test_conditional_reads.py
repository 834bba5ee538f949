"""Conditional reads: ETag, Cache-Control and Vary on the reads polling clients repeat, 304 to a
matching If-None-Match, and every change that alters an answer altering its tag."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.media.samples import png_bytes
from tests.support.api import ApiUser, sign_up
from tests.support.server import live_server
from webapp_api.app import create_app

CHATS = "/api/v1/chats/"
ME = "/api/v1/me"


def _page(chat: dict[str, Any]) -> str:
    return f"/api/v1/messages/chat/{chat['id']}"


async def _get(user: ApiUser, path: str, tag: str | None = None, **params: Any) -> httpx.Response:
    headers = {"If-None-Match": tag} if tag else {}
    return await user.get(path, headers=headers, params=params)


async def _tag(user: ApiUser, path: str, **params: Any) -> str:
    """The current tag, checked to be answered with 304 while nothing changes."""
    response = await _get(user, path, **params)
    assert response.status_code == 200, response.text
    tag = response.headers["ETag"]
    again = await _get(user, path, tag, **params)
    assert again.status_code == 304, (path, params)
    return tag


async def _changed(user: ApiUser, path: str, tag: str, **params: Any) -> str:
    """Asserts the answer changed since `tag`; returns the new tag."""
    response = await _get(user, path, tag, **params)
    assert response.status_code == 200, (path, params, "still 304 after a change")
    assert response.headers["ETag"] != tag
    return await _tag(user, path, **params)


def _assert_caching_headers(response: httpx.Response) -> None:
    assert response.headers["Cache-Control"] == "private, no-cache"
    vary = {part.strip().lower() for part in response.headers["Vary"].split(",")}
    assert {"x-telegram-init-data", "authorization"} <= vary
    assert response.headers["ETag"].startswith('W/"')


@pytest.mark.parametrize("path", [CHATS, ME, "page"])
async def test_reads_carry_a_tag_and_answer_304_without_a_body(
    alice: ApiUser, bob: ApiUser, path: str
) -> None:
    chat = await alice.create_group("Team", bob)
    await alice.send(chat["id"], "hello")
    path = _page(chat) if path == "page" else path
    full = await _get(alice, path)
    assert full.status_code == 200
    _assert_caching_headers(full)
    tag = full.headers["ETag"]
    for sent in (tag, tag.removeprefix("W/"), f'W/"other", {tag}', "*"):
        unchanged = await _get(alice, path, sent)
        assert unchanged.status_code == 304, sent
        assert unchanged.content == b""
        _assert_caching_headers(unchanged)
        assert unchanged.headers["ETag"] == tag
    assert (await _get(alice, path, 'W/"something-else"')).status_code == 200
    # Another person's answer is another answer.
    assert (await _get(bob, path, tag)).status_code == 200


async def test_a_browser_revalidates_by_itself_through_cors(alice: ApiUser) -> None:
    response = await alice.get(CHATS, headers={"Origin": "https://miniapp.example"})
    assert response.headers["access-control-allow-origin"] == "https://miniapp.example"
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    assert "origin" in response.headers["Vary"].lower()


async def test_the_chat_list_tag_follows_every_change_to_the_list(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    group = await alice.create_group("Team", bob)
    private = await alice.private_chat_with(carol)
    tag = await _tag(alice, CHATS)

    async def step(action: Callable[[], Awaitable[Any]]) -> None:
        nonlocal tag
        await action()
        tag = await _changed(alice, CHATS, tag)

    sent: dict[str, Any] = {}

    async def send() -> None:
        sent.update(await bob.send(group["id"], "news"))

    await step(send)
    await step(lambda: bob.ok("PUT", f"/api/v1/messages/{sent['id']}", json={"text": "edited"}))
    await step(lambda: alice.ok("POST", f"/api/v1/messages/{sent['id']}/read"))
    await step(
        lambda: bob.ok("PUT", f"/api/v1/messages/{sent['id']}/reaction", json={"emoji": "👍"})
    )
    await step(lambda: bob.ok("DELETE", f"/api/v1/messages/{sent['id']}"))
    await step(lambda: alice.ok("PUT", f"/api/v1/chats/{group['id']}", json={"title": "Crew"}))
    await step(lambda: alice.ok("POST", f"/api/v1/chats/{group['id']}/members/{carol.id}"))
    await step(lambda: alice.ok("DELETE", f"/api/v1/chats/{group['id']}/members/{carol.id}"))
    await step(
        lambda: alice.ok("PATCH", f"/api/v1/chats/{group['id']}/settings", json={"is_muted": True})
    )
    # The other person of a private chat names it: their profile is part of the list.
    carol.first_name = "Caroline"
    await step(lambda: carol.ok("GET", ME))
    # So does whoever signed the last message.
    await bob.send(group["id"], "again")
    tag = await _changed(alice, CHATS, tag)
    bob.first_name = "Robert"
    await step(lambda: bob.ok("GET", ME))
    await step(lambda: carol.send(private["id"], "hi"))
    await step(lambda: alice.ok("DELETE", f"/api/v1/chats/{private['id']}"))
    await step(lambda: bob.create_group("Bob's", alice))
    # Someone else's change in a chat of mine I cannot see in the list changes nothing.
    await bob.ok("PATCH", f"/api/v1/chats/{group['id']}/settings", json={"is_favorite": True})
    assert (await _get(alice, CHATS, tag)).status_code == 304


async def test_the_chat_list_tag_depends_on_the_query(alice: ApiUser) -> None:
    for title in ("Alpha", "Beta", "Gamma"):
        await alice.create_group(title)
    tags = {
        await _tag(alice, CHATS),
        await _tag(alice, CHATS, limit=2),
        await _tag(alice, CHATS, q="alp"),
    }
    first = await _get(alice, CHATS, limit=2)
    tags.add(await _tag(alice, CHATS, limit=2, cursor=first.headers["X-Next-Cursor"]))
    assert len(tags) == 4


async def test_an_untitled_groups_tag_follows_its_members_names(
    alice: ApiUser, bob: ApiUser
) -> None:
    await alice.create_group("", bob)
    tag = await _tag(alice, CHATS)
    bob.first_name = "Robert"
    await bob.ok("GET", ME)
    tag = await _changed(alice, CHATS, tag)
    (item,) = (await _get(alice, CHATS)).json()
    assert item["title"] == "Robert"


async def test_the_message_page_tag_follows_every_change_to_the_page(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    chat = await alice.create_group("Team", bob, carol)
    first = await bob.send(chat["id"], "first")
    path = _page(chat)
    tag = await _tag(alice, path)

    async def step(action: Callable[[], Awaitable[Any]]) -> None:
        nonlocal tag
        await action()
        tag = await _changed(alice, path, tag)

    await step(lambda: bob.send(chat["id"], "second"))
    await step(lambda: bob.ok("PUT", f"/api/v1/messages/{first['id']}", json={"text": "1st"}))
    await step(lambda: carol.ok("POST", f"/api/v1/messages/{first['id']}/read"))
    await step(
        lambda: carol.ok("PUT", f"/api/v1/messages/{first['id']}/reaction", json={"emoji": "🔥"})
    )
    await step(lambda: alice.ok("POST", f"/api/v1/messages/{first['id']}/pin"))
    await step(lambda: alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{carol.id}"))
    bob.first_name = "Robert"
    await step(lambda: bob.ok("GET", ME))
    await step(lambda: bob.ok("DELETE", f"/api/v1/messages/{first['id']}"))
    # A change elsewhere leaves the page alone.
    other = await bob.create_group("Other", alice)
    await bob.send(other["id"], "elsewhere")
    assert (await _get(alice, path, tag)).status_code == 304


async def test_the_message_page_tag_depends_on_page_and_per_page(alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    for text in ("a", "b", "c"):
        await alice.send(chat["id"], text)
    path = _page(chat)
    tags = {
        await _tag(alice, path),
        await _tag(alice, path, per_page=2),
        await _tag(alice, path, per_page=2, page=2),
        await _tag(alice, path, page=2),
    }
    assert len(tags) == 4


async def test_a_sender_who_left_still_signs_the_page(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    await bob.send(chat["id"], "bye")
    await bob.ok("POST", f"/api/v1/chats/{chat['id']}/leave")
    tag = await _tag(alice, _page(chat))
    bob.first_name = "Robert"
    await bob.ok("GET", ME)
    await _changed(alice, _page(chat), tag)
    page = (await _get(alice, _page(chat))).json()
    assert page["messages"][0]["sender"]["first_name"] == "Robert"


async def test_no_304_for_a_chat_i_am_not_in(alice: ApiUser, bob: ApiUser) -> None:
    chat = await alice.create_group("Team", bob)
    tag = await _tag(bob, _page(chat))
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{bob.id}")
    gone = await _get(bob, _page(chat), tag)
    assert gone.status_code == 404
    assert gone.json()["code"] == "chat_not_found"


async def test_the_me_tag_follows_my_profile(alice: ApiUser) -> None:
    tag = await _tag(alice, ME)
    await alice.ok("PATCH", ME, json={"bio": "hello"})
    tag = await _changed(alice, ME, tag)
    alice.first_name = "Alicia"
    tag = await _changed(alice, ME, tag)
    assert (await _get(alice, ME)).json()["first_name"] == "Alicia"


@pytest.fixture
async def short_lived_urls(
    database_url: str, tmp_dir: Path, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A server whose media URLs are signed for one second: they change every second."""
    app = create_app(make_settings(database_url, tmp_dir, media_url_ttl=1))
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        yield client


async def test_re_signed_media_urls_change_the_tags(short_lived_urls: httpx.AsyncClient) -> None:
    alice = await sign_up(short_lived_urls, 301, "Alice", "alice")
    chat = await alice.create_group("Team")
    upload = await alice.post("/api/v1/media", files={"file": ("a.png", png_bytes(), "image/png")})
    await alice.send(chat["id"], "", media_ids=[upload.json()["id"]])
    for path in (CHATS, _page(chat)):
        response = await _get(alice, path)
        tag, body = response.headers["ETag"], response.json()
        # Poll (each poll an event, no sleeping) until the URLs are signed anew.
        for _ in range(10_000):
            response = await _get(alice, path, tag)
            if response.status_code == 200:
                break
        assert response.status_code == 200
        assert response.json() != body
