"""Every integer the API takes is held to the database's range at the edge (core.bounds): a path,
a query, a JSON body and a form field alike answer 422, never a 5xx; booleans are never integers;
and every answer carries the security headers without ever showing a stack trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Base, Chat, Media, Message
from tests.conftest import make_settings
from tests.media.samples import png_bytes
from tests.support.api import ApiUser
from tests.support.server import live_server
from tests.support.telegram import auth_headers
from webapp_api.app import create_app

INT64_MAX = 2**63 - 1
# Past BIGINT either way, and the ones the first fuzz run found.
OUT_OF_RANGE = [2**63, 2**64 - 1, 1180591620717411303424, -(2**63) - 1]

PATHS_WITH_IDS = [
    ("GET", "/api/v1/chats/{id}"),
    ("PATCH", "/api/v1/chats/{id}"),
    ("DELETE", "/api/v1/chats/{id}"),
    ("POST", "/api/v1/chats/{id}/restore"),
    ("POST", "/api/v1/chats/{id}/leave"),
    ("GET", "/api/v1/chats/{id}/online"),
    ("POST", "/api/v1/chats/{id}/members/{id}"),
    ("DELETE", "/api/v1/chats/{id}/members/{id}"),
    ("GET", "/api/v1/chats/{id}/messages"),
    ("GET", "/api/v1/chats/{id}/events"),
    ("GET", "/api/v1/chats/{id}/pinned"),
    ("GET", "/api/v1/chats/{id}/ai"),
    ("POST", "/api/v1/chats/{id}/invite-link"),
    ("GET", "/api/v1/messages/chat/{id}"),
    ("POST", "/api/v1/messages/chat/{id}/read-all"),
    ("DELETE", "/api/v1/messages/{id}"),
    ("POST", "/api/v1/messages/{id}/pin"),
    ("POST", "/api/v1/messages/{id}/read"),
    ("DELETE", "/api/v1/messages/{id}/reaction"),
    ("POST", "/api/v1/messages/{id}/regenerate"),
    ("GET", "/api/v1/ai/replies/{id}"),
    ("POST", "/api/v1/ai/replies/{id}/cancel"),
    ("GET", "/api/v1/media/{id}"),
    ("GET", "/api/v1/media/{id}/thumbnail"),
    ("GET", "/media/{id}"),
]


Sessions = async_sessionmaker[AsyncSession]


async def _count(sessionmaker: Sessions, model: type[Base]) -> int:
    async with sessionmaker() as session:  # a transaction of its own: none stays open
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _is_validation_error(response: httpx.Response, where: str | None = None) -> bool:
    body = response.json()
    return (
        response.status_code == 422
        and body["code"] == "validation_error"
        and (where is None or any(problem["loc"][0] == where for problem in body["detail"]))
    )


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("method", "path"), PATHS_WITH_IDS)
async def test_a_path_id_outside_bigint_is_422(
    alice: ApiUser, method: str, path: str, value: int
) -> None:
    response = await alice.request(method, path.replace("{id}", str(value)), json={})
    assert _is_validation_error(response, "path"), response.text


@pytest.mark.parametrize(("method", "path"), PATHS_WITH_IDS)
async def test_a_path_id_below_one_is_422_and_the_largest_bigint_is_an_ordinary_404(
    alice: ApiUser, method: str, path: str
) -> None:
    for below in ("0", "-5"):
        response = await alice.request(method, path.replace("{id}", below), json={})
        assert _is_validation_error(response, "path"), response.text
    largest = await alice.request(method, path.replace("{id}", str(INT64_MAX)), json={})
    assert largest.status_code in (403, 404), largest.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/chats/{chat}/events", {"after_seq": 36893488147419103233}),
        ("/api/v1/chats/{chat}/events", {"after_seq": -1}),
        ("/api/v1/chats/{chat}/messages", {"before_id": 2**63}),
        ("/api/v1/chats/{chat}/messages", {"after_id": -(2**63) - 1}),
        ("/api/v1/messages/chat/{chat}", {"page": 2**63}),
        ("/api/v1/messages/chat/{chat}", {"page": 10**9 + 1}),
        ("/api/v1/search/messages", {"q": "hi", "chat_id": 2**64}),
    ],
)
async def test_a_query_integer_out_of_range_is_422(
    alice: ApiUser, path: str, params: dict[str, int]
) -> None:
    chat = await alice.create_group("Team")
    response = await alice.get(path.replace("{chat}", str(chat["id"])), params=params)
    assert _is_validation_error(response, "query"), response.text


async def test_the_largest_page_is_an_empty_page(alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    await alice.send(chat["id"], "hi")
    page = await alice.ok("GET", f"/api/v1/messages/chat/{chat['id']}", params={"page": 10**9})
    assert (page["messages"], page["has_next"], page["has_prev"]) == ([], False, True)


@pytest.mark.parametrize(
    "params",
    [{"message_id": 9223372036854775808, "chat_id": 1}, {"message_id": 1, "chat_id": -(2**64)}],
)
async def test_forward_query_ids_out_of_range_are_422(
    alice: ApiUser, params: dict[str, int]
) -> None:
    response = await alice.post("/api/v1/messages/forward", params=params)
    assert _is_validation_error(response), response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/messages", {"chat_id": 1180591620717411303424, "text": "x"}),
        ("/api/v1/messages", {"chat_id": "{chat}", "text": "x", "reply_to_message_id": 2**63}),
        ("/api/v1/messages", {"chat_id": "{chat}", "text": "x", "media_ids": [2**64]}),
        ("/api/v1/chats/{chat}/messages", {"text": "x", "media_ids": [-(2**63) - 1]}),
        ("/api/v1/chats/{chat}/read", {"message_id": 2**63}),
        ("/api/v1/chats", {"chat_type": "group", "title": "T", "member_ids": [2**63]}),
        ("/api/v1/chats", {"chat_type": "private", "member_ids": [-(2**64)]}),
    ],
)
async def test_a_body_integer_out_of_range_is_422_and_changes_nothing(
    alice: ApiUser, sessionmaker: Sessions, path: str, body: dict[str, Any]
) -> None:
    chat = await alice.create_group("Team")
    filled = {k: chat["id"] if v == "{chat}" else v for k, v in body.items()}
    chats_before = await _count(sessionmaker, Chat)
    response = await alice.post(path.replace("{chat}", str(chat["id"])), json=filled)
    assert _is_validation_error(response), response.text
    assert await _count(sessionmaker, Message) == 0
    assert await _count(sessionmaker, Chat) == chats_before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/messages", {"chat_id": True, "text": "x"}),
        ("POST", "/api/v1/messages", {"chat_id": 1.0, "text": "x"}),
        ("POST", "/api/v1/chats/{chat}/read", {"message_id": True}),
        ("POST", "/api/v1/chats", {"chat_type": "group", "title": "T", "member_ids": [True]}),
        ("POST", "/api/v1/chats/{chat}/invite-link", {"expires_in_seconds": True}),
        ("PATCH", "/api/v1/chats/{chat}/settings", {"is_muted": 1}),
        ("PATCH", "/api/v1/chats/{chat}/settings", {"is_archived": "yes"}),
        ("PATCH", "/api/v1/me", {"notifications_enabled": "false"}),
        ("PUT", "/api/v1/chats/{chat}/ai", {"mode": "off", "temperature": True}),
        ("PUT", "/api/v1/chats/{chat}/ai", {"mode": ""}),
        ("PUT", "/api/v1/profile", {"enabled": 1, "data": {}}),
    ],
)
async def test_booleans_are_never_integers_nor_integers_booleans(
    alice: ApiUser, sessionmaker: Sessions, method: str, path: str, body: dict[str, Any]
) -> None:
    chat = await alice.create_group("Team")  # chat 1: `true` used to post into it
    response = await alice.request(method, path.replace("{chat}", str(chat["id"])), json=body)
    assert _is_validation_error(response), response.text
    assert await _count(sessionmaker, Message) == 0
    settings = await alice.ok("GET", f"/api/v1/chats/{chat['id']}")
    assert settings["my_settings"] == {
        "is_favorite": False,
        "is_muted": False,
        "is_archived": False,
        "last_read_seq": settings["my_settings"]["last_read_seq"],
    }
    assert (await alice.ok("GET", "/api/v1/me"))["notifications_enabled"] is True


async def test_ids_as_decimal_strings_are_still_ids(alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    sent = await alice.ok(
        "POST", "/api/v1/messages", json={"chat_id": str(chat["id"]), "text": "x"}
    )
    assert sent["chat_id"] == chat["id"]


async def test_an_invite_link_with_a_real_lifetime_still_expires(alice: ApiUser) -> None:
    chat = await alice.create_group("Team")
    link = await alice.ok(
        "POST", f"/api/v1/chats/{chat['id']}/invite-link", json={"expires_in_seconds": 60}
    )
    assert link["expires_at"] is not None


async def test_an_empty_media_kind_is_refused_and_nothing_is_stored(
    alice: ApiUser, sessionmaker: Sessions
) -> None:
    response = await alice.post(
        "/api/v1/media",
        files={"file": ("p.png", png_bytes(), "image/png")},
        data={"kind": ""},
    )
    assert (response.status_code, response.json()["code"]) == (422, "invalid_media_kind")
    assert await _count(sessionmaker, Media) == 0


async def test_a_form_id_out_of_range_is_422(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, dev_login=True)
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        for value in ("9223372036854775808", "0", "true"):
            response = await client.post("/app/dev/open", data={"user_id": value})
            assert _is_validation_error(response), (value, response.text)


# -- security headers and error bodies ----------------------------------------------------------


def _has_security_headers(response: httpx.Response) -> bool:
    headers = (
        response.headers.get("x-content-type-options"),
        response.headers.get("referrer-policy"),
    )
    return headers == ("nosniff", "no-referrer")


async def test_every_kind_of_answer_carries_the_security_headers(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    answers = [
        await alice.get("/api/v1/me"),  # JSON
        await alice.get("/api/v1/chats/999"),  # an error
        await alice.get("/api/v1/chats/99999999999999999999"),  # a validation error
        await client.get("/api/v1/me"),  # no credentials
        await client.get("/app"),  # the client's page
        await client.get("/app/js/api.js"),  # a static file
        await client.get("/openapi.json"),
        await client.get("/no/such/path"),
    ]
    assert [r.status_code for r in answers] == [200, 404, 422, 401, 200, 200, 200, 404]
    assert all(_has_security_headers(r) for r in answers)
    policy = answers[4].headers["content-security-policy"]
    assert "script-src 'self' https://telegram.org" in policy
    assert "object-src 'none'" in policy


async def test_a_server_error_shows_no_stack_trace(tmp_path: Path) -> None:
    """A database without its tables (migrations never ran): every query fails in the driver."""
    unmigrated = f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}"
    settings = make_settings(unmigrated, tmp_path, redis_url=None)
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        response = await client.get("/api/v1/me", headers=auth_headers(4242, "Ann"))
    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal server error",
        "code": "internal_error",
        "status_code": 500,
    }
    assert _has_security_headers(response)


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/api/v1/billing/transactions", "9999999999999999999"),
        ("/api/v1/billing/transactions", "9223372036854775808"),
        ("/api/v1/chats", "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OTk"),
    ],
)
async def test_a_cursor_past_bigint_is_422(alice: ApiUser, path: str, cursor: str) -> None:
    response = await alice.get(path, params={"cursor": cursor})
    assert (response.status_code, response.json()["code"]) == (422, "bad_cursor"), response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/chats/{chat}/messages", {"text": "a\u0000b"}),
        ("POST", "/api/v1/chats/{chat}/messages", {"text": "x", "client_msg_id": "m\u0000"}),
        ("PATCH", "/api/v1/chats/{chat}", {"title": "a\u0000b"}),
        ("POST", "/api/v1/chats", {"chat_type": "group", "title": "\u0000"}),
        ("PATCH", "/api/v1/me", {"bio": "a\u0000b"}),
        ("PUT", "/api/v1/profile", {"enabled": True, "data": {"intentions": ["x\u0000"]}}),
    ],
)
async def test_a_nul_character_in_a_body_is_422_on_every_backend(
    alice: ApiUser, sessionmaker: Sessions, method: str, path: str, body: dict[str, Any]
) -> None:
    """PostgreSQL stores no NUL in text or JSON: it used to be a 500 there (found by the fuzzer)."""
    chat = await alice.create_group("Team")
    response = await alice.request(method, path.replace("{chat}", str(chat["id"])), json=body)
    assert _is_validation_error(response, "body"), response.text
    assert await _count(sessionmaker, Message) == 0
    assert (await alice.ok("GET", f"/api/v1/chats/{chat['id']}"))["title"] == "Team"


@pytest.mark.parametrize(
    ("method", "path", "where"),
    [
        ("GET", "/api/v1/search/messages?q=a%00b", "query"),
        ("GET", "/api/v1/chats?q=a%00b", "query"),
        ("GET", "/api/v1/chats?cursor=%00", "query"),
        ("GET", "/api/v1/chats/search?q=a%00b", "query"),
        ("GET", "/api/v1/users/by-username/a%00b", "path"),
        ("POST", "/api/v1/join/a%00b", "path"),
        ("DELETE", "/api/v1/chats/{chat}/invite-link/a%00b", "path"),
    ],
)
async def test_a_nul_character_in_a_url_is_422_on_every_backend(
    alice: ApiUser, method: str, path: str, where: str
) -> None:
    chat = await alice.create_group("Team")
    response = await alice.request(method, path.replace("{chat}", str(chat["id"])))
    assert _is_validation_error(response, where), response.text


async def test_a_nul_in_an_upload_file_name_is_422_and_nothing_is_stored(
    alice: ApiUser, sessionmaker: Sessions
) -> None:
    # Written by hand: httpx would percent-encode the NUL.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="p\x00.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png_bytes() + b"\r\n--b--\r\n"
    )
    response = await alice.post(
        "/api/v1/media",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (response.status_code, response.json()["code"]) == (422, "filename_invalid")
    assert await _count(sessionmaker, Media) == 0
