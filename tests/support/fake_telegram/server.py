"""The fake Bot API's server (one per session) and the pytest fixtures that give each test its
own FakeTelegram and a real aiogram Bot talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.fake_telegram.fake import FakeTelegram
from tests.support.fake_telegram.wire import (
    TOKEN_PATTERN,
    ApiError,
    error_response,
)
from tests.support.server import FakeServer
from tests.support.telegram import TEST_BOT_TOKEN


class FakeTelegramServer(FakeServer[FakeTelegram]):
    """The fake Bot API's server, answered by the current FakeTelegram (an idle one between
    tests)."""

    def __init__(self) -> None:
        super().__init__(FakeTelegram(""))
        methods = ["GET", "POST"]
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=methods),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
                Route("/{path:path}", self._not_found, methods=methods),
            ]
        )

    async def _api(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not TOKEN_PATTERN.fullmatch(token):
            return error_response(ApiError(401, "Unauthorized"))
        return await self.current.handle(request, token, request.path_params["method"])

    async def _file(self, request: Request) -> Response:
        """A file's download, by the file_path getFile gave."""
        data = self.current.file_by_path(request.path_params["path"])
        if request.path_params["token"] != self.current.token or data is None:
            return error_response(ApiError(404, "Not Found"))
        return Response(data, media_type="application/octet-stream")

    async def _not_found(self, request: Request) -> Response:
        return error_response(ApiError(404, "Not Found"))

    def session(self, token: str = TEST_BOT_TOKEN) -> AbstractAsyncContextManager[FakeTelegram]:
        """A fresh FakeTelegram that takes the requests until the block ends."""
        return self.serving(FakeTelegram(self.base_url, token=token))

    def api(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.base_url)


@pytest.fixture(scope="session")
async def fake_telegram_server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer().running() as server:
        yield server


@pytest.fixture
async def fake_telegram(fake_telegram_server: FakeTelegramServer) -> AsyncIterator[FakeTelegram]:
    async with fake_telegram_server.session() as fake:
        yield fake


@pytest.fixture(scope="session")
async def fake_telegram_session(
    fake_telegram_server: FakeTelegramServer,
) -> AsyncIterator[AiohttpSession]:
    """One aiohttp session for the run (closing one costs aiogram's 0.25 s grace)."""
    session = AiohttpSession(api=fake_telegram_server.api())
    yield session
    await session.close()


@pytest.fixture
def fake_telegram_bot(fake_telegram: FakeTelegram, fake_telegram_session: AiohttpSession) -> Bot:
    """A real aiogram Bot (TEST_BOT_TOKEN) talking to this test's FakeTelegram. Start polling
    with close_bot_session=False: the session is shared."""
    return Bot(fake_telegram.token, session=fake_telegram_session)
