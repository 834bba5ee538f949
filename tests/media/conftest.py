"""Users, uploads and servers with their own settings for the media tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.support.api import ApiUser, RunningApp, running_app, user_fixture


async def upload(
    user: ApiUser,
    data: bytes,
    filename: str = "file.bin",
    *,
    content_type: str = "application/octet-stream",
    kind: str | None = None,
    path: str = "/api/v1/media",
) -> httpx.Response:
    form = {"kind": kind} if kind is not None else None
    return await user.post(path, files={"file": (filename, data, content_type)}, data=form)


async def uploaded(user: ApiUser, data: bytes, filename: str = "file.bin", **kwargs: Any) -> Any:
    response = await upload(user, data, filename, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def send_media(
    user: ApiUser, chat_id: int, media_ids: list[int], text: str = "with media"
) -> httpx.Response:
    """A message showing uploads, sent through the route."""
    return await user.post(
        f"/api/v1/chats/{chat_id}/messages", json={"text": text, "media_ids": media_ids}
    )


async def attach(
    user: ApiUser, chat_id: int, media_ids: list[int], text: str = "with media"
) -> dict[str, Any]:
    """The message of a successful `send_media`."""
    response = await send_media(user, chat_id, media_ids, text)
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()
    return message


def stored_files(media_dir: Path) -> list[Path]:
    """Every file under the media directory, spooled uploads and temporary files included."""
    return sorted(path for path in media_dir.rglob("*") if path.is_file())


ServerFactory = Callable[..., AbstractAsyncContextManager[RunningApp]]


@pytest.fixture
def media_server(database_url: str, engine: AsyncEngine, tmp_path: Path) -> ServerFactory:
    """A server of its own (own settings, own empty MEDIA_DIR) on the suite's database."""

    def start(**overrides: object) -> AbstractAsyncContextManager[RunningApp]:
        return running_app(make_settings(database_url, tmp_path, **overrides))

    return start


alice = user_fixture(201, "Alice")
bob = user_fixture(202, "Bob")
carol = user_fixture(203, "Carol")
