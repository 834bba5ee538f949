"""A broker for tests that plays a slow or lossy Redis: it rings nobody, and the test decides
when (and whether) each envelope it kept is delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import unit_of_work
from core.settings import Settings
from services import messages, users
from services.messages import MessageDraft
from tests.support.api import ApiUser, RunningApp, running_app


class HeldBack(Broker):
    """A doorbell that rings nobody: what is published waits here."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[bytes] = []

    async def publish(self, data: bytes) -> None:
        self.envelopes.append(data)

    async def ping(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class DoorbellApp(RunningApp):
    """A live app whose doorbells the test rings: a change committed beside it keeps its
    envelope, which the test publishes through the app's own broker when it chooses."""

    sessionmaker: async_sessionmaker[AsyncSession]

    async def unannounced(self, change: Callable[[AsyncSession], Awaitable[object]]) -> bytes:
        """Commits `change` (one event) as any unit of work does, without ringing: its
        envelope."""
        held = HeldBack()
        async with unit_of_work(self.sessionmaker, held) as session:
            await change(session)
        (envelope,) = held.envelopes
        return envelope

    async def send_unannounced(self, sender: ApiUser, chat_id: int, text: str) -> bytes:
        """A message committed like any other whose doorbell has not rung (yet)."""

        async def send(session: AsyncSession) -> None:
            user = await users.get_user(session, sender.id)
            await messages.send_message(session, user, chat_id, MessageDraft(text=text))

        return await self.unannounced(send)

    async def publish(self, envelope: bytes) -> None:
        """Through the app's own broker: its listeners (the hub) run before this returns."""
        await self.context.broker.publish(envelope)


@asynccontextmanager
async def doorbell_app(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[DoorbellApp]:
    async with running_app(settings) as running:
        yield DoorbellApp(running.server, running.client, running.app, sessionmaker)
