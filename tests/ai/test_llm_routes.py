"""The seed project's LLM chat routes: one answer when it is done, or the reply as SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.ai.conftest import CLAUDE_MODEL
from tests.ai.helpers import group_with_ai, open_ai_chat, reassemble
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply

ANSWER = "Streaming answers arrive piece by piece, as server-sent events."


async def test_a_message_and_its_answer_in_one_request(fake_llm: FakeLLM, alice: ApiUser) -> None:
    fake_llm.script(FakeReply(text=ANSWER))
    chat_id = await open_ai_chat(alice)
    result = await alice.ok(
        "POST", f"/api/v1/llm/chat/{chat_id}/message", json={"content": "how does it work?"}
    )
    user_message, ai_message, reply = result["user_message"], result["ai_message"], result["reply"]
    assert (user_message["text"], user_message["sender_id"]) == ("how does it work?", alice.id)
    assert ai_message["text"] == ANSWER
    assert ai_message["sender"]["is_bot"] is True
    assert ai_message["reply_to_message_id"] == user_message["id"]
    assert (reply["status"], reply["message_id"]) == ("done", ai_message["id"])
    assert reply["output_tokens"] > 0


async def test_the_route_asks_the_ai_in_a_group_and_may_pick_the_model(
    fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    group_id = await group_with_ai(alice, bob)
    result = await alice.ok(
        "POST",
        f"/api/v1/llm/chat/{group_id}/message",
        json={"content": "no mention needed here", "model": CLAUDE_MODEL},
    )
    assert result["reply"]["model"] == CLAUDE_MODEL
    assert result["ai_message"]["text"] == "Hello from the fake model."
    (request,) = fake_llm.requests
    assert request.path == "/v1/messages"
    assert (await bob.ok("GET", f"/api/v1/chats/{group_id}/ai"))["model"] == CLAUDE_MODEL


async def read_sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The events of a text/event-stream body, as a browser's EventSource would see them."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "message", list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
    return events


async def test_the_stream_route_speaks_server_sent_events(
    fake_llm: FakeLLM, client: httpx.AsyncClient, alice: ApiUser
) -> None:
    fake_llm.script(FakeReply(text=ANSWER, chunk_size=4, delay=0.002))
    chat_id = await open_ai_chat(alice)
    async with client.stream(
        "POST",
        f"/api/v1/llm/chat/{chat_id}/message/stream",
        headers=alice.headers,
        json={"content": "stream it"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await read_sse(response)

    names = [name for name, _ in events]
    assert names[:2] == ["user_message", "ai_reply_started"]
    assert names[-1] == "ai_reply_done"
    assert set(names[2:-1]) == {"ai_reply_delta"}
    user_message = events[0][1]
    assert user_message["text"] == "stream it"
    started, done = events[1][1], events[-1][1]
    assert started["reply_to_message_id"] == user_message["id"]
    assert reassemble([data for name, data in events if name == "ai_reply_delta"]) == ANSWER
    assert done["reply_id"] == started["reply_id"]
    ai_message = await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    assert ai_message["messages"][-1]["id"] == done["message_id"]
    assert ai_message["messages"][-1]["text"] == ANSWER
