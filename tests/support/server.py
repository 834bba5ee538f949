"""A real uvicorn server on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def live_server(app: FastAPI, **options: Any) -> AsyncIterator[LiveServer]:
    """Serve the app as `python -m webapp_api` would, with its settings' protocol options."""
    sock = bind_free_port()
    host, port = sock.getsockname()
    settings: Settings = app.state.settings
    config = uvicorn.Config(
        app, lifespan="on", access_log=False, **{**uvicorn_options(settings), **options}
    )
    server = uvicorn.Server(config)
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
