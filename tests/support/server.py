"""A real uvicorn server on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from core.settings import Settings
from webapp_api.app import uvicorn_options


@dataclass(frozen=True, slots=True)
class LiveServer:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def bind_free_port() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says so, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(
    app: ASGIApp, *, send_buffer: int | None = None, **config: Any
) -> AsyncIterator[LiveServer]:
    """Any ASGI app under a real uvicorn on a free loopback port, in this event loop.
    `send_buffer` shrinks the kernel send buffer of accepted sockets (a slow network)."""
    sock = bind_free_port()
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, access_log=False, **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        yield LiveServer(host, port)
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def live_server(
    app: FastAPI, *, send_buffer: int | None = None, **options: Any
) -> AsyncIterator[LiveServer]:
    """Serve the app as `python -m webapp_api` would, with its settings' protocol options."""
    settings: Settings = app.state.settings
    async with serve(
        app, send_buffer=send_buffer, lifespan="on", **{**uvicorn_options(settings), **options}
    ) as running:
        yield running


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll server-side state that has no event to await (e.g. the hub's socket count)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (no event exists to await)
            await asyncio.sleep(0.01)


class SessionFake(Protocol):
    """One test's view of a fake outside service."""

    base_url: str

    def close(self) -> None: ...


FakeT = TypeVar("FakeT", bound=SessionFake)


class FakeServer(Generic[FakeT]):
    """A fake outside service on a loopback uvicorn, shared by the test session. Requests go to
    the current test's fake; between tests, to an idle one. Its base_url stays the same for the
    whole session, so a session-wide app can be configured with it."""

    app: ASGIApp

    def __init__(self, idle: FakeT) -> None:
        self.base_url = ""
        self.current = idle

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        async with serve(
            self.app, lifespan="off", log_config=None, timeout_graceful_shutdown=2
        ) as running:
            self.base_url = self.current.base_url = running.base_url
            try:
                yield self
            finally:
                self.current.close()

    @asynccontextmanager
    async def serving(self, fake: FakeT) -> AsyncIterator[FakeT]:
        """`fake` takes the requests until the block ends."""
        previous = self.current
        self.current = fake
        try:
            yield fake
        finally:
            self.current = previous
            fake.close()
