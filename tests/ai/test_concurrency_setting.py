"""AI_MAX_CONCURRENT_REPLIES: a process runs at most that many replies at once; the others wait
in the queue until one ends."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_sessionmaker
from models import AiReply, AiReplyStatus
from tests.ai.conftest import OwnAppFactory
from tests.ai.helpers import open_ai_chat
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import wait_until


async def test_no_more_replies_run_at_once_than_the_setting_allows(
    own_app: OwnAppFactory, own_engine: AsyncEngine, fake_llm: FakeLLM
) -> None:
    sessionmaker = create_sessionmaker(own_engine)

    async def statuses() -> Counter[AiReplyStatus]:
        async with sessionmaker() as session:
            return Counter(await session.scalars(select(AiReply.status)))

    # Three replies queued by a process that runs none: the next process finds them all at once.
    async with own_app(ai_runner_enabled=False) as queueing:
        for telegram_id, name in ((261, "Ann"), (262, "Ben"), (263, "Cid")):
            user = await queueing.sign_up(telegram_id, name)
            await user.send(await open_ai_chat(user), "hello")
    assert await statuses() == Counter({AiReplyStatus.QUEUED: 3})
    gate = asyncio.Event()
    fake_llm.script(FakeReply(gate=gate), FakeReply(gate=gate), FakeReply())
    # A long stale-after: on a loaded machine no sweep may take the waiting replies for dead.
    async with own_app(ai_max_concurrent_replies=2, ai_reply_stale_after=30):
        await wait_until(lambda: len(fake_llm.requests) == 2)
        # The runner claims back to back, before a claimed reply reaches the vendor: a third
        # claim would have been made by now.
        assert await statuses() == Counter({AiReplyStatus.RUNNING: 2, AiReplyStatus.QUEUED: 1})
        gate.set()
        done = Counter({AiReplyStatus.DONE: 3})
        async with asyncio.timeout(10):
            while await statuses() != done:  # noqa: ASYNC110 (the database has no event to await)
                await asyncio.sleep(0.02)
    assert len(fake_llm.requests) == 3
