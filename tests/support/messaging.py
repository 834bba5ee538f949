"""Looking behind the API of the messaging core: the event log, the broker, the rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.envelope import Envelope
from models import Base, Chat, ChatEvent

WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Published:
    """One envelope the server handed to its broker."""

    user_ids: list[int]
    chat_id: int | None
    seq: int | None
    frame: dict[str, Any]


class BrokerTap:
    """What the live server publishes to its broker while the tap is on.

    The server publishes after its commit, so a test awaits what it expects with `until`
    instead of assuming it has already arrived."""

    def __init__(self) -> None:
        self.received: list[Published] = []
        self._arrived = asyncio.Event()

    def listen(self, envelope: Envelope) -> None:
        self.received.append(
            Published(envelope.user_ids, envelope.chat_id, envelope.seq, json.loads(envelope.frame))
        )
        self._arrived.set()

    def in_chat(self, chat_id: int, after_seq: int = 0) -> list[Published]:
        """This chat's events after `after_seq`, in seq order."""
        found = [
            p
            for p in self.received
            if p.chat_id == chat_id and p.seq is not None and p.seq > after_seq
        ]
        return sorted(found, key=lambda p: p.seq or 0)

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while not done():
                self._arrived.clear()
                await self._arrived.wait()

    async def chat_events(self, chat_id: int, after_seq: int, count: int) -> list[Published]:
        """Waits for `count` events of the chat after `after_seq`; returns all there are."""
        await self.until(lambda: len(self.in_chat(chat_id, after_seq)) >= count)
        return self.in_chat(chat_id, after_seq)


@contextmanager
def broker_tap(app: FastAPI) -> Iterator[BrokerTap]:
    tap = BrokerTap()
    remove = app.state.context.broker.add_listener(tap.listen)
    try:
        yield tap
    finally:
        remove()


async def stored_events(
    sessionmaker: async_sessionmaker[AsyncSession], chat_id: int
) -> list[ChatEvent]:
    async with sessionmaker() as session:
        return list(
            await session.scalars(
                select(ChatEvent).where(ChatEvent.chat_id == chat_id).order_by(ChatEvent.seq)
            )
        )


async def chat_row(sessionmaker: async_sessionmaker[AsyncSession], chat_id: int) -> Chat:
    async with sessionmaker() as session:
        chat = await session.get(Chat, chat_id)
        assert chat is not None
        return chat


async def row_count(sessionmaker: async_sessionmaker[AsyncSession], model: type[Base]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
