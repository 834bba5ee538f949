"""A reply whose process died (no heartbeat) runs once more; a second death fails it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import AiReply, AiReplyStatus
from tests.ai.conftest import DEFAULT_MODEL
from tests.ai.helpers import bot_message, follow_reply, group_with_ai, reply_row, socket_of
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer
from tests.support.ws import new_message


async def stored_reply(
    sessionmaker: async_sessionmaker[AsyncSession], trigger: dict[str, Any], **columns: Any
) -> int:
    """A reply job written as another process (or an older version of this one) left it."""
    async with sessionmaker() as session:
        reply = AiReply(
            chat_id=trigger["chat_id"],
            trigger_message_id=trigger["id"],
            requested_by=trigger["sender_id"],
            provider="openai",
            max_tokens=256,
            **{"model": DEFAULT_MODEL, **columns},
        )
        session.add(reply)
        await session.commit()
        return reply.id


async def orphaned_reply(
    sessionmaker: async_sessionmaker[AsyncSession], trigger: dict[str, Any], *, attempts: int
) -> int:
    """A reply left `running` by a process that stopped beating minutes ago."""
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    return await stored_reply(
        sessionmaker,
        trigger,
        status=AiReplyStatus.RUNNING,
        text="Half an ans",
        attempts=attempts,
        claimed_by="a-dead-process",
        heartbeat_at=long_ago,
        started_at=long_ago,
        created_at=long_ago,
    )


async def test_an_orphaned_reply_is_run_again_and_completes(
    server: LiveServer,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
    alice: ApiUser,
) -> None:
    fake_llm.script(FakeReply(text="A whole answer."))
    group_id = await group_with_ai(alice)
    trigger = await alice.send(group_id, "a message the dead process was answering")
    async with socket_of(server, alice) as ws:
        reply_id = await orphaned_reply(sessionmaker, trigger, attempts=1)
        reply = await follow_reply(ws)
        assert reply.reply_id == reply_id
        assert reply.end["type"] == "ai_reply_done"
        assert reply.streamed_text == "A whole answer."  # not appended to the lost attempt's
        message = await bot_message(ws)
    assert (message["text"], message["reply_to_message_id"]) == ("A whole answer.", trigger["id"])
    row = await reply_row(sessionmaker, reply_id)
    assert (row.status, row.attempts, row.text) == (AiReplyStatus.DONE, 2, "A whole answer.")
    assert len(fake_llm.requests) == 1


async def test_a_reply_orphaned_twice_fails_as_interrupted(
    server: LiveServer,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
    alice: ApiUser,
) -> None:
    group_id = await group_with_ai(alice)
    trigger = await alice.send(group_id, "a message two dead processes were answering")
    async with socket_of(server, alice) as ws:
        reply_id = await orphaned_reply(sessionmaker, trigger, attempts=2)
        failed = await ws.wait_for("ai_reply_failed")
        # The same keys as the AI's refusal of a group message (tests/ai/test_group_refusals).
        assert failed == {
            "type": "ai_reply_failed",
            "reply_id": reply_id,
            "chat_id": group_id,
            "reply_to_message_id": trigger["id"],
            "code": "interrupted",
            "message": "The server answering this reply stopped; please try again",
        }
        state = await alice.ok("GET", f"/api/v1/ai/replies/{reply_id}")
        assert (state["status"], state["error_code"]) == ("failed", "interrupted")
        assert (state["output_tokens"], state["cost_micros"], state["message_id"]) == (0, 0, None)
        assert fake_llm.requests == []

        # The chat is not left "thinking": the AI answers the next question.
        again = await alice.send(group_id, "@test_ai_bot try again please")
        await ws.none_before("new_message", new_message(again["id"]))
        retry = await follow_reply(ws)
        assert (retry.started["reply_to_message_id"], retry.end["type"]) == (
            again["id"],
            "ai_reply_done",
        )


async def test_a_queued_reply_for_a_model_no_longer_offered_fails_with_its_code(
    server: LiveServer,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
    alice: ApiUser,
) -> None:
    group_id = await group_with_ai(alice)
    trigger = await alice.send(group_id, "asked while the old model was configured")
    async with socket_of(server, alice) as ws:
        reply_id = await stored_reply(sessionmaker, trigger, model="a-retired-model")
        failed = await ws.wait_for("ai_reply_failed")
    assert (failed["reply_id"], failed["code"]) == (reply_id, "not_configured")
    assert fake_llm.requests == []
