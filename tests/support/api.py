"""A signed-in test user talking to a live server over real HTTP, and apps started with
settings of a test's own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from core.settings import Settings
from tests.support.server import LiveServer, live_server
from tests.support.telegram import auth_headers
from webapp_api.app import create_app
from webapp_api.context import AppContext


@dataclass
class ApiUser:
    client: httpx.AsyncClient
    telegram_id: int
    first_name: str
    username: str | None
    id: int = 0
    # One initData for all the user's requests, as a Mini App sends the one it was opened with.
    auth_date: int = field(default_factory=lambda: int(time.time()))

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(
            self.telegram_id, self.first_name, username=self.username, auth_date=self.auth_date
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a request that must succeed."""
        response = await self.request(method, path, **kwargs)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()

    async def create_group(self, title: str, *members: ApiUser) -> dict[str, Any]:
        body: dict[str, Any] = await self.ok(
            "POST",
            "/api/v1/chats",
            json={"chat_type": "group", "title": title, "member_ids": [m.id for m in members]},
        )
        return body

    async def private_chat_with(self, other: ApiUser) -> dict[str, Any]:
        body: dict[str, Any] = await self.ok(
            "POST", "/api/v1/chats", json={"chat_type": "private", "member_ids": [other.id]}
        )
        return body

    async def send(self, chat_id: int, text: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = await self.ok(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"text": text, **extra}
        )
        return body


async def sign_up(
    client: httpx.AsyncClient, telegram_id: int, first_name: str, username: str | None = None
) -> ApiUser:
    user = ApiUser(client, telegram_id, first_name, username)
    user.id = (await user.ok("GET", "/api/v1/me"))["id"]
    return user


def user_fixture(telegram_id: int, first_name: str) -> Any:
    """A pytest fixture for a signed-up user (with the directory's own `client`)."""

    async def signed_up(client: httpx.AsyncClient) -> ApiUser:
        return await sign_up(client, telegram_id, first_name, first_name.lower())

    return pytest.fixture(signed_up, name=first_name.lower())


@dataclass(frozen=True, slots=True)
class RunningApp:
    """An app served by a live server, and an HTTP client for it."""

    server: LiveServer
    client: httpx.AsyncClient
    app: FastAPI

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.state.settings
        return settings

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context

    async def sign_up(self, telegram_id: int, name: str) -> ApiUser:
        return await sign_up(self.client, telegram_id, name, name.lower())


@asynccontextmanager
async def running_app(
    settings: Settings, *, timeout: float = 15, **server_options: Any
) -> AsyncIterator[RunningApp]:
    """`create_app(settings)` under a live server (`server_options` go to `live_server`)."""
    app = create_app(settings)
    async with (
        live_server(app, **server_options) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as client,
    ):
        yield RunningApp(server, client, app)
