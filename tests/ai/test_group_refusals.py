"""In a group, a message that asks the AI stands even when the AI cannot answer it."""

from __future__ import annotations

import asyncio

from tests.ai.conftest import BOT_USERNAME
from tests.ai.helpers import bot_message, group_with_ai, socket_of
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer


async def test_a_busy_ai_in_a_group_keeps_the_message_and_says_why(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    gate = asyncio.Event()
    fake_llm.script(FakeReply(text="Answer.", gate=gate))
    group_id = await group_with_ai(alice, bob)
    async with socket_of(server, bob) as bob_ws:
        await alice.send(group_id, f"@{BOT_USERNAME} first question")
        await bob_ws.wait_for("ai_reply_started")
        second = await alice.send(group_id, f"@{BOT_USERNAME} and another one")
        refused = await bob_ws.wait_for("ai_reply_failed")
        assert refused == {
            "type": "ai_reply_failed",
            "reply_id": None,
            "chat_id": group_id,
            "reply_to_message_id": second["id"],
            "code": "ai_busy",
            "message": refused["message"],
        }
        gate.set()
        assert (await bot_message(bob_ws))["text"] == "Answer."
    history = await bob.ok("GET", f"/api/v1/chats/{group_id}/messages")
    assert f"@{BOT_USERNAME} and another one" in [m["text"] for m in history["messages"]]
