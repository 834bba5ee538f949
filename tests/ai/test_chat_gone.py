"""A reply whose chat changes under it while it is written ends as an ordinary failure."""

from __future__ import annotations

from tests.ai.helpers import bot_user_id, follow_reply, group_with_ai, set_chat_ai, socket_of
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer


async def test_a_reply_whose_ai_was_removed_meanwhile_fails_with_the_refusals_code(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    fake_llm.script(FakeReply(text="a slow answer " * 20, chunk_size=5, delay=0.02))
    chat_id = await group_with_ai(alice)
    await set_chat_ai(alice, chat_id, mode="always")
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "a question")
        started = await ws.wait_for("ai_reply_started")
        first = await ws.wait_for("ai_reply_delta")
        bot_id = await bot_user_id(alice)
        await alice.ok("DELETE", f"/api/v1/chats/{chat_id}/members/{bot_id}")
        reply = await follow_reply(ws, started=started, deltas=[first])
    assert (reply.end["type"], reply.end["code"]) == ("ai_reply_failed", "chat_not_found")
    state = await alice.ok("GET", f"/api/v1/ai/replies/{started['reply_id']}")
    assert (state["status"], state["error_code"], state["message_id"]) == (
        "failed",
        "chat_not_found",
        None,
    )
