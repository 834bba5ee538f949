"""Every way a vendor can fail: retried while nothing was produced, else a clear failure that
charges nothing and posts no message."""

from __future__ import annotations

import pytest

from tests.ai.conftest import CLAUDE_MODEL, DEFAULT_MODEL, OwnAppFactory
from tests.ai.helpers import (
    FollowedReply,
    bot_message,
    follow_reply,
    open_ai_chat,
    set_chat_ai,
    socket_of,
)
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer

ANSWER = "The answer, at last, after a long and winding stream of words."


async def ask(server: LiveServer, user: ApiUser, model: str) -> tuple[int, FollowedReply]:
    chat_id = await open_ai_chat(user)
    if model != DEFAULT_MODEL:
        await set_chat_ai(user, chat_id, model=model)
    async with socket_of(server, user) as ws:
        await user.send(chat_id, "a question")
        return chat_id, await follow_reply(ws)


@pytest.mark.parametrize(
    ("model", "replies"),
    [
        pytest.param(DEFAULT_MODEL, [FakeReply(status=429, retry_after=0.05)], id="openai-429"),
        pytest.param(DEFAULT_MODEL, [FakeReply(status=500)], id="openai-500"),
        pytest.param(DEFAULT_MODEL, [FakeReply(status=503, retry_after=0.01)], id="openai-503"),
        pytest.param(
            CLAUDE_MODEL,
            [FakeReply(status=429, error_type="rate_limit_error", retry_after=0.05)],
            id="anthropic-429",
        ),
        pytest.param(
            CLAUDE_MODEL, [FakeReply(status=529, retry_after=0.01)] * 2, id="anthropic-529-twice"
        ),
        pytest.param(DEFAULT_MODEL, [FakeReply(text=ANSWER, drop_after_chunks=0)], id="dropped"),
    ],
)
async def test_a_failure_before_any_text_is_retried(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, model: str, replies: list[FakeReply]
) -> None:
    fake_llm.script(*replies, FakeReply(text=ANSWER))
    _, reply = await ask(server, alice, model)
    assert reply.end["type"] == "ai_reply_done"
    assert reply.streamed_text == ANSWER
    assert len(fake_llm.requests) == len(replies) + 1
    state = await alice.ok("GET", f"/api/v1/ai/replies/{reply.reply_id}")
    assert (state["status"], state["text"]) == ("done", ANSWER)


@pytest.mark.parametrize(
    ("model", "replies", "code"),
    [
        pytest.param(
            CLAUDE_MODEL,
            [FakeReply(status=529, retry_after=0.01)] * 3,
            "overloaded",
            id="anthropic-overloaded-every-time",
        ),
        pytest.param(
            DEFAULT_MODEL,
            [FakeReply(status=400, error_type="context_length_exceeded")],
            "context_too_long",
            id="openai-context-too-long",
        ),
        pytest.param(
            CLAUDE_MODEL,
            [FakeReply(status=400, error_type="context_length_exceeded")],
            "context_too_long",
            id="anthropic-context-too-long",
        ),
        pytest.param(DEFAULT_MODEL, [FakeReply(status=401)], "auth_failed", id="openai-bad-key"),
        pytest.param(CLAUDE_MODEL, [FakeReply(status=401)], "auth_failed", id="anthropic-bad-key"),
    ],
)
async def test_a_failure_before_streaming_fails_the_reply(
    server: LiveServer,
    fake_llm: FakeLLM,
    alice: ApiUser,
    model: str,
    replies: list[FakeReply],
    code: str,
) -> None:
    fake_llm.script(*replies)
    chat_id, reply = await ask(server, alice, model)
    assert reply.end["type"] == "ai_reply_failed"
    assert reply.end["code"] == code
    assert reply.end["message"]
    assert reply.deltas == []
    assert len(fake_llm.requests) == len(replies)
    await expect_nothing_kept(alice, chat_id, reply.reply_id, code)


@pytest.mark.parametrize(
    ("model", "failure", "code"),
    [
        pytest.param(
            CLAUDE_MODEL,
            FakeReply(
                text=ANSWER, chunk_size=4, fail_after_chunks=3, error_type="overloaded_error"
            ),
            "overloaded",
            id="anthropic-overloaded-mid-stream",
        ),
        pytest.param(
            DEFAULT_MODEL,
            FakeReply(text=ANSWER, chunk_size=4, fail_after_chunks=3),
            "upstream_error",
            id="openai-error-mid-stream",
        ),
        pytest.param(
            DEFAULT_MODEL,
            FakeReply(text=ANSWER, chunk_size=4, drop_after_chunks=3),
            "connection_lost",
            id="openai-connection-dropped",
        ),
        pytest.param(
            CLAUDE_MODEL,
            FakeReply(text=ANSWER, chunk_size=4, drop_after_chunks=3),
            "connection_lost",
            id="anthropic-connection-dropped",
        ),
    ],
)
async def test_a_failure_after_some_text_fails_without_a_retry(
    server: LiveServer,
    fake_llm: FakeLLM,
    alice: ApiUser,
    model: str,
    failure: FakeReply,
    code: str,
) -> None:
    fake_llm.script(failure)
    chat_id, reply = await ask(server, alice, model)
    assert (reply.end["type"], reply.end["code"]) == ("ai_reply_failed", code)
    assert reply.streamed_text == ANSWER[:12]  # what came before the failure was streamed
    assert len(fake_llm.requests) == 1  # a retry would repeat text already shown
    await expect_nothing_kept(alice, chat_id, reply.reply_id, code)


async def expect_nothing_kept(user: ApiUser, chat_id: int, reply_id: int, code: str) -> None:
    """A failed reply: no message from the AI, no usage, no cost."""
    state = await user.ok("GET", f"/api/v1/ai/replies/{reply_id}")
    assert (state["status"], state["error_code"]) == ("failed", code)
    assert (state["input_tokens"], state["output_tokens"], state["cost_micros"]) == (0, 0, 0)
    assert state["message_id"] is None
    history = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    assert [m["text"] for m in history["messages"]] == ["a question"]
    assert await user.ok("GET", "/api/v1/ai/usage") == []


async def test_a_stalled_stream_times_out(own_app: OwnAppFactory, fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeReply(text="Just the beginning", chunk_size=9, delay=30))
    async with own_app(llm_request_timeout=0.3) as app:
        alice = await app.sign_up(221, "Alice")
        chat_id, reply = await ask(app.server, alice, DEFAULT_MODEL)
        assert (reply.end["type"], reply.end["code"]) == ("ai_reply_failed", "timeout")
        assert reply.streamed_text == "Just the "
        await expect_nothing_kept(alice, chat_id, reply.reply_id, "timeout")


async def test_the_anthropic_path_end_to_end(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    fake_llm.script(FakeReply(text=ANSWER, chunk_size=5, input_tokens=42, output_tokens=17))
    chat_id = await open_ai_chat(alice)
    assert (await set_chat_ai(alice, chat_id, model=CLAUDE_MODEL))["model"] == CLAUDE_MODEL
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "hello Claude")
        reply = await follow_reply(ws)
        message = await bot_message(ws)
    assert reply.started["model"] == CLAUDE_MODEL
    assert reply.streamed_text == message["text"] == ANSWER
    (request,) = fake_llm.requests
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.json["model"] == "claude-haiku-4-5"
    assert request.json["stream"] is True
    assert request.json["messages"] == [{"role": "user", "content": "hello Claude"}]
    assert request.json["system"].startswith("You are a helpful")
    state = await alice.ok("GET", f"/api/v1/ai/replies/{reply.reply_id}")
    assert (state["model"], state["input_tokens"], state["output_tokens"]) == (
        CLAUDE_MODEL,
        42,
        17,
    )
    assert state["cost_micros"] == 42 * 1 + 17 * 5  # $1 / $5 per million tokens
