"""Small steps the AI tests share: chats with the AI, and a reply followed over a socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import AiReply
from tests.support.api import ApiUser
from tests.support.server import LiveServer
from tests.support.ws import Frame, WsClient, ws_user


@asynccontextmanager
async def socket_of(server: LiveServer, user: ApiUser) -> AsyncIterator[WsClient]:
    async with ws_user(server, user.telegram_id, user.first_name, username=user.username) as ws:
        yield ws


async def open_ai_chat(user: ApiUser) -> int:
    """The user's direct chat with the AI."""
    chat: dict[str, Any] = await user.ok("POST", "/api/v1/chats/ai")
    return int(chat["id"])


async def bot_user_id(user: ApiUser) -> int:
    chat: dict[str, Any] = await user.ok("POST", "/api/v1/chats/ai")
    return next(int(member["id"]) for member in chat["members"] if member["is_bot"])


async def group_with_ai(owner: ApiUser, *members: ApiUser, title: str = "Team") -> int:
    """A group of these people with the AI added as a member (default mode: mention)."""
    group = await owner.create_group(title, *members)
    await owner.ok("POST", f"/api/v1/chats/{group['id']}/members/{await bot_user_id(owner)}")
    return int(group["id"])


async def set_chat_ai(user: ApiUser, chat_id: int, **changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = await user.ok("PUT", f"/api/v1/chats/{chat_id}/ai", json=changes)
    return settings


def reassemble(deltas: list[Frame]) -> str:
    """The deltas' text, checking that each one starts where the previous one ended."""
    text = ""
    for delta in deltas:
        assert delta["offset"] == len(text), (delta["offset"], len(text))
        text += delta["text"]
    return text


@dataclass
class FollowedReply:
    started: Frame
    deltas: list[Frame]
    end: Frame  # ai_reply_done or ai_reply_failed
    early_bot_messages: list[Frame] = field(default_factory=list)

    @property
    def reply_id(self) -> int:
        return int(self.started["reply_id"])

    @property
    def streamed_text(self) -> str:
        return reassemble(self.deltas)


async def follow_reply(
    ws: WsClient,
    timeout: float = 10.0,
    *,
    started: Frame | None = None,
    deltas: list[Frame] | None = None,
) -> FollowedReply:
    """The next reply's frames on this socket, from ai_reply_started to its end; or the rest of
    one whose start (and first deltas) the caller already read."""
    if started is None:
        started = await ws.wait_for("ai_reply_started", timeout=timeout)
    deltas = [] if deltas is None else deltas
    early: list[Frame] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv(timeout)
            if frame["type"] == "new_message" and frame["message"]["sender"]["is_bot"]:
                early.append(frame)
            if frame.get("reply_id") != started["reply_id"]:
                continue
            if frame["type"] == "ai_reply_delta":
                deltas.append(frame)
            elif frame["type"] in ("ai_reply_done", "ai_reply_failed"):
                return FollowedReply(started, deltas, frame, early)


async def bot_message(ws: WsClient, timeout: float = 5.0) -> dict[str, Any]:
    """The next message the AI posted, as its new_message frame carries it."""
    frame = await ws.wait_for(
        "new_message", lambda f: bool(f["message"]["sender"]["is_bot"]), timeout=timeout
    )
    message: dict[str, Any] = frame["message"]
    return message


async def reply_row(sessionmaker: async_sessionmaker[AsyncSession], reply_id: int) -> AiReply:
    async with sessionmaker() as session:
        reply = await session.get(AiReply, reply_id)
        assert reply is not None
        return reply


def answers_before(message_id: int) -> Callable[[Frame], bool]:
    """An ai_reply_* frame of a reply to a message older than this one."""
    return lambda frame: int(frame.get("reply_to_message_id") or 0) < message_id
