"""A reply streams to every member's socket, coalesced, and ends as a message from the AI."""

from __future__ import annotations

import asyncio
import string

from llm.catalogue import DEFAULT_MODELS, cost_micros
from llm.tokens import estimate_tokens
from tests.ai.conftest import DEFAULT_MODEL
from tests.ai.helpers import (
    bot_message,
    follow_reply,
    group_with_ai,
    open_ai_chat,
    reassemble,
    socket_of,
)
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer, wait_until

LONG_TEXT = " ".join(f"word{i}" for i in range(60))


async def test_both_members_see_the_reply_stream_and_then_the_message(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    fake_llm.script(FakeReply(text=LONG_TEXT, chunk_size=7, delay=0.003))
    group_id = await group_with_ai(alice, bob)
    async with socket_of(server, alice) as alice_ws, socket_of(server, bob) as bob_ws:
        question = await bob.send(group_id, "@test_ai_bot count for us")
        for ws in (alice_ws, bob_ws):
            reply = await follow_reply(ws)
            assert reply.started["chat_id"] == group_id
            assert reply.started["reply_to_message_id"] == question["id"]
            assert reply.started["model"] == DEFAULT_MODEL
            assert reply.streamed_text == LONG_TEXT
            assert reply.end["type"] == "ai_reply_done"
            assert reply.end["incomplete"] is False
            assert reply.early_bot_messages == []  # "done" comes before the message
            message = await bot_message(ws)
            assert message["id"] == reply.end["message_id"]
            assert message["text"] == LONG_TEXT
            assert message["reply_to_message_id"] == question["id"]
            assert message["sender"]["username"] == "test_ai_bot"


async def test_deltas_are_coalesced_without_losing_a_character(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    text = (string.ascii_letters * 6)[:300]
    fake_llm.script(FakeReply(text=text, chunk_size=1, delay=0.002))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "spell something")
        reply = await follow_reply(ws)
        assert reply.streamed_text == text  # offsets contiguous, nothing lost
        assert 2 <= len(reply.deltas) <= 60  # 300 provider chunks, ~one frame per 50 ms
        assert (await bot_message(ws))["text"] == text


async def test_the_first_delta_leaves_before_the_rest_of_a_network_read_is_parsed(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    """The fake writes the whole stream at once, so the SDK gets hundreds of tokens per read
    and parses them without yielding; the first token must not wait for the rest."""
    text = (string.ascii_letters * 40)[:2000]
    tokens = len(text) // 2
    fake_llm.script(FakeReply(text=text, chunk_size=2))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "everything at once, please")
        reply = await follow_reply(ws)
    assert reply.streamed_text == text
    assert reply.deltas[0]["text"] == text[:2]  # sent as the first token came, alone
    assert 2 <= len(reply.deltas) < tokens // 4  # and the rest batched, not token by token


async def test_a_late_joiner_gets_the_text_so_far(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    text = "".join(f"piece {i}. " for i in range(20)).strip()
    fake_llm.script(FakeReply(text=text, chunk_size=6, delay=0.04))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "take your time")
        started = await ws.wait_for("ai_reply_started")
        first = await ws.wait_for("ai_reply_delta")
        state = await alice.ok("GET", f"/api/v1/ai/replies/{started['reply_id']}")
        assert state["status"] == "running"
        assert state["message_id"] is None
        assert len(state["text"]) >= first["offset"] + len(first["text"])
        assert len(state["text"]) < len(text)
        assert text.startswith(state["text"])

        reply = await follow_reply(ws, started=started, deltas=[first])
        assert (reply.end["type"], reply.streamed_text) == ("ai_reply_done", text)
    final = await alice.ok("GET", f"/api/v1/ai/replies/{started['reply_id']}")
    assert (final["status"], final["text"]) == ("done", text)


async def test_replies_in_different_chats_run_at_the_same_time(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    gate = asyncio.Event()
    fake_llm.script(FakeReply(text="For Alice.", gate=gate), FakeReply(text="For Bob.", gate=gate))
    alice_chat, bob_chat = await open_ai_chat(alice), await open_ai_chat(bob)
    async with socket_of(server, alice) as alice_ws, socket_of(server, bob) as bob_ws:
        await alice.send(alice_chat, "question one")
        await bob.send(bob_chat, "question two")
        await alice_ws.wait_for("ai_reply_started")
        await bob_ws.wait_for("ai_reply_started")
        await wait_until(lambda: len(fake_llm.requests) == 2)  # both are streaming at once
        gate.set()
        texts = {(await bot_message(ws))["text"] for ws in (alice_ws, bob_ws)}
    assert texts == {"For Alice.", "For Bob."}


async def test_one_reply_at_a_time_in_a_chat(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    gate = asyncio.Event()
    fake_llm.script(FakeReply(text="First answer.", gate=gate), FakeReply(text="Second."))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "first")
        await ws.wait_for("ai_reply_started")
        busy = await alice.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "second"})
        assert busy.status_code == 409
        assert busy.json()["code"] == "ai_busy"
        gate.set()
        assert (await bot_message(ws))["text"] == "First answer."
        await alice.send(chat_id, "second, now")
        assert (await bot_message(ws))["text"] == "Second."
    history = await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    assert [m["text"] for m in history["messages"]] == [
        "first",
        "First answer.",
        "second, now",
        "Second.",
    ]


async def test_cancel_keeps_the_partial_text_and_charges_only_what_was_produced(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    full = " ".join(f"sentence number {i}." for i in range(200))
    fake_llm.script(FakeReply(text=full, chunk_size=5, delay=0.02))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "talk for a long time")
        started = await ws.wait_for("ai_reply_started")
        deltas = [await ws.wait_for("ai_reply_delta")]
        while len(reassemble(deltas)) < 30:
            deltas.append(await ws.wait_for("ai_reply_delta"))
        cancelled = await alice.ok("POST", f"/api/v1/ai/replies/{started['reply_id']}/cancel")
        assert cancelled["id"] == started["reply_id"]

        reply = await follow_reply(ws, started=started, deltas=deltas)
        assert reply.end["type"] == "ai_reply_done"
        assert reply.end["incomplete"] is True
        partial = reply.streamed_text
        assert 30 <= len(partial) < len(full)
        assert full.startswith(partial)
        message = await bot_message(ws)
        assert message["id"] == reply.end["message_id"]
        assert message["text"] == partial.strip()
    await wait_until(lambda: fake_llm.disconnects == 1)  # the upstream request was stopped

    reply = await alice.ok("GET", f"/api/v1/ai/replies/{started['reply_id']}")
    model = next(m for m in DEFAULT_MODELS if m.id == DEFAULT_MODEL)
    assert reply["status"] == "cancelled"
    assert reply["incomplete"] is True
    assert reply["text"] == partial
    assert reply["message_id"] == message["id"]
    assert reply["output_tokens"] == estimate_tokens(partial) < estimate_tokens(full)
    assert reply["input_tokens"] > 0
    assert reply["cost_micros"] == cost_micros(model, reply["input_tokens"], reply["output_tokens"])
    usage = await alice.ok("GET", "/api/v1/ai/usage")
    assert [(u["replies"], u["output_tokens"]) for u in usage] == [(1, reply["output_tokens"])]


async def test_regenerate_answers_the_same_message_again(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    fake_llm.script(
        FakeReply(text="Paris."), FakeReply(text="It is Paris."), FakeReply(text="Paris, France.")
    )
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        question = await alice.send(chat_id, "What is the capital of France?")
        first = await bot_message(ws)

        again = await alice.ok("POST", f"/api/v1/messages/{question['id']}/regenerate")
        assert again["reply_to_message_id"] == question["id"]
        assert again["status"] in ("queued", "running")
        second = await bot_message(ws)
        assert (second["text"], second["reply_to_message_id"]) == ("It is Paris.", question["id"])

        # Given the AI's own message, it answers the question that message answered.
        once_more = await alice.ok("POST", f"/api/v1/messages/{second['id']}/regenerate")
        assert once_more["reply_to_message_id"] == question["id"]
        third = await bot_message(ws)
        assert (third["text"], third["reply_to_message_id"]) == ("Paris, France.", question["id"])
    assert first["text"] == "Paris."
    for request in fake_llm.requests:
        turns = [m for m in request.json["messages"] if m["role"] != "system"]
        # The question is answered afresh: earlier answers are not in the prompt.
        assert turns == [{"role": "user", "content": "What is the capital of France?"}]


async def test_a_reply_longer_than_a_message_is_posted_as_several(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    paragraph = " ".join(f"word{i}" for i in range(150))
    text = "\n\n".join([paragraph] * 6)  # about 6,300 characters; a message holds 4,096
    fake_llm.script(FakeReply(text=text, chunk_size=400))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        question = await alice.send(chat_id, "write a lot")
        reply = await follow_reply(ws)
        first, second = await bot_message(ws), await bot_message(ws)
    assert reply.streamed_text == text
    assert reply.end["message_ids"] == [first["id"], second["id"]]
    assert reply.end["message_id"] == first["id"]
    assert (first["reply_to_message_id"], second["reply_to_message_id"]) == (question["id"], None)
    assert first["text"] + "\n\n" + second["text"] == text  # cut between paragraphs


async def test_the_ais_message_shows_its_reply_in_the_history_the_page_and_the_list(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    fake_llm.script(FakeReply(text="Answer."))
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "question")
        message = await bot_message(ws)
    assert message["ai"]["model"] == DEFAULT_MODEL
    history = (await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages"))["messages"]
    page = (await alice.ok("GET", f"/api/v1/messages/chat/{chat_id}"))["messages"]
    for shown in (history, page):
        assert [m["ai"] for m in shown] == [None, message["ai"]]
    (listed,) = [c for c in await alice.ok("GET", "/api/v1/chats") if c["id"] == chat_id]
    assert listed["last_message_detail"]["ai"] == message["ai"]
