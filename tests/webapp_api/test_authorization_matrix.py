"""Every chat and message route, called by a member, a non-member and a removed member.

Members get what their role allows. For everyone else the chat does not exist: 404 with no
data, and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ChatEvent, Message
from tests.support.api import ApiUser
from tests.support.messaging import chat_row, row_count
from webapp_api.routes import chats, messages

SECRET_TITLE = "Secret Team"
SECRET_TEXT = "top secret words"


@dataclass
class World:
    """Alice owns a group with Bob; Dave was in it and was removed; Carol never was. Each of
    them has a chat of their own to forward to and from."""

    users: dict[str, ApiUser]
    chat_id: int
    message_id: int
    removed_members_message_id: int
    token: str
    home: dict[str, tuple[int, int]] = field(default_factory=dict)  # chat id, message id

    def values(self, subject: str) -> dict[str, Any]:
        home_chat, home_message = self.home[subject]
        return {
            "chat": self.chat_id,
            "msg": self.message_id,
            "removed_msg": self.removed_members_message_id,
            "owner": self.users["owner"].id,
            "outsider": self.users["non-member"].id,
            "token": self.token,
            "home": home_chat,
            "home_msg": home_message,
        }


@pytest.fixture
async def world(alice: ApiUser, bob: ApiUser, carol: ApiUser, dave: ApiUser) -> World:
    chat = await alice.create_group(SECRET_TITLE, bob, dave)
    message = await alice.send(chat["id"], SECRET_TEXT)
    daves = await dave.send(chat["id"], "dave's old words")
    await alice.ok("POST", f"/api/v1/messages/{message['id']}/pin")
    link = await alice.ok("POST", f"/api/v1/chats/{chat['id']}/invite-link")
    await alice.ok("DELETE", f"/api/v1/chats/{chat['id']}/members/{dave.id}")
    world = World(
        users={"owner": alice, "member": bob, "non-member": carol, "removed": dave},
        chat_id=chat["id"],
        message_id=message["id"],
        removed_members_message_id=daves["id"],
        token=link["token"],
    )
    for subject in ("member", "non-member", "removed"):
        user = world.users[subject]
        home = await user.create_group(f"{user.first_name}'s notes")
        note = await user.send(home["id"], "a note")
        world.home[subject] = (home["id"], note["id"])
    return world


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    member_status: int
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


ROUTES = [
    Route("GET", "/api/v1/chats/{chat}", 200),
    Route("PUT", "/api/v1/chats/{chat}", 403, json={"title": "Mine"}),
    Route("PATCH", "/api/v1/chats/{chat}", 403, json={"title": "Mine"}),
    Route("DELETE", "/api/v1/chats/{chat}", 403),
    Route("POST", "/api/v1/chats/{chat}/restore", 200),
    Route("POST", "/api/v1/chats/{chat}/leave", 200),
    Route("GET", "/api/v1/chats/{chat}/online", 200),
    Route("POST", "/api/v1/chats/{chat}/members/{outsider}", 403),
    Route("DELETE", "/api/v1/chats/{chat}/members/{owner}", 403),
    Route("PATCH", "/api/v1/chats/{chat}/members/{owner}", 403, json={"role": "member"}),
    Route("POST", "/api/v1/chats/{chat}/invite-by-username", 403, json={"username": "zed"}),
    Route("POST", "/api/v1/chats/{chat}/invite-link", 403),
    Route("DELETE", "/api/v1/chats/{chat}/invite-link/{token}", 403),
    Route("PATCH", "/api/v1/chats/{chat}/settings", 200, json={"is_muted": True}),
    Route("GET", "/api/v1/chats/{chat}/messages", 200),
    Route("GET", "/api/v1/chats/{chat}/messages", 200, params={"after_id": 0}),
    Route("POST", "/api/v1/chats/{chat}/messages", 200, json={"text": "hi"}),
    Route("POST", "/api/v1/chats/{chat}/read", 200, json={"message_id": "{msg}"}),
    Route("GET", "/api/v1/chats/{chat}/pinned", 200),
    Route("GET", "/api/v1/chats/{chat}/events", 200),
    Route("GET", "/api/v1/messages/chat/{chat}", 200),
    Route("POST", "/api/v1/messages", 200, json={"chat_id": "{chat}", "text": "hi"}),
    Route("POST", "/api/v1/messages/chat/{chat}/read-all", 200),
    Route(
        "POST", "/api/v1/messages/forward", 200, params={"message_id": "{msg}", "chat_id": "{home}"}
    ),
    Route(
        "POST",
        "/api/v1/messages/forward",
        200,
        params={"message_id": "{home_msg}", "chat_id": "{chat}"},
    ),
    Route("PUT", "/api/v1/messages/{msg}", 403, json={"text": "changed"}),
    Route("PATCH", "/api/v1/messages/{msg}", 403, json={"text": "changed"}),
    Route("PUT", "/api/v1/messages/{removed_msg}", 403, json={"text": "changed"}),
    Route("DELETE", "/api/v1/messages/{msg}", 403),
    Route("DELETE", "/api/v1/messages/{removed_msg}", 403),
    Route("POST", "/api/v1/messages/{msg}/read", 200),
    Route("PUT", "/api/v1/messages/{msg}/reaction", 200, json={"emoji": "👍"}),
    Route("DELETE", "/api/v1/messages/{msg}/reaction", 200),
    Route("POST", "/api/v1/messages/{msg}/pin", 403),
    Route("DELETE", "/api/v1/messages/{msg}/pin", 403),
    Route("GET", "/api/v1/search/messages", 200, params={"q": "secret", "chat_id": "{chat}"}),
]


def _fill(value: Any, values: dict[str, Any]) -> Any:
    """Placeholders in paths, bodies and queries; a whole "{name}" becomes the value itself."""
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return values[value[1:-1]]
    return value


def _route_id(route: Route) -> str:
    suffix = ""
    if route.params:
        suffix = "?" + "&".join(f"{k}={v}" for k, v in route.params.items())
    return f"{route.method} {route.path}{suffix}"


async def _call(world: World, subject: str, route: Route) -> httpx.Response:
    values = world.values(subject)
    return await world.users[subject].request(
        route.method,
        route.path.format(**values),
        json=_fill(route.json, values),
        params=_fill(route.params, values),
    )


async def test_a_member_gets_what_their_role_allows_from_every_route(world: World) -> None:
    # Leaving comes last: after it the member is no longer one.
    routes = sorted(ROUTES, key=lambda r: r.path.endswith("/leave"))
    answers = {
        _route_id(route): (await _call(world, "member", route)).status_code for route in routes
    }
    assert answers == {_route_id(route): route.member_status for route in routes}


@pytest.mark.parametrize("subject", ["non-member", "removed"])
async def test_everyone_else_gets_404_with_no_data_and_changes_nothing(
    world: World, subject: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async def state() -> tuple[int, int, int]:
        return (
            (await chat_row(sessionmaker, world.chat_id)).last_seq,
            await row_count(sessionmaker, Message),
            await row_count(sessionmaker, ChatEvent),
        )

    before = await state()
    wrong: dict[str, Any] = {}
    for route in ROUTES:
        response = await _call(world, subject, route)
        body = response.json()
        if (
            response.status_code != 404
            or set(body) != {"error", "code", "status_code"}
            or body["code"] not in {"chat_not_found", "message_not_found"}
            or SECRET_TITLE in response.text
            or SECRET_TEXT in response.text
        ):
            wrong[_route_id(route)] = (response.status_code, response.text)
        elif await state() != before:
            wrong[_route_id(route)] = "changed the chat"
    assert wrong == {}


def test_the_matrix_covers_every_chat_and_message_route() -> None:
    """A new route under /chats/{id} or /messages must be added to the matrix."""
    not_chat_scoped = {
        ("GET", "/api/v1/chats"),
        ("GET", "/api/v1/chats/search"),
        ("POST", "/api/v1/chats"),
        ("POST", "/api/v1/chats/ai"),
        ("POST", "/api/v1/join/{token}"),
        ("GET", "/api/v1/users/by-username/{username}"),
    }
    declared = {
        (method, route.path)
        for router in (chats.router, messages.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    placeholders = {
        "{chat}": "{chat_id}",
        "{msg}": "{message_id}",
        "{removed_msg}": "{message_id}",
        "{outsider}": "{user_id}",
        "{owner}": "{user_id}",
    }
    covered = set()
    for route in ROUTES:
        path = route.path
        for ours, theirs in placeholders.items():
            path = path.replace(ours, theirs)
        covered.add((route.method, path))
    assert declared - not_chat_scoped - covered == set()
