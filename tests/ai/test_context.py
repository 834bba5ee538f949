"""What the AI reads: its persona, the chat's newest history that fits, who said what, and the
user's own profile in their direct chat only."""

from __future__ import annotations

from typing import Any

from llm.base import ChatTurn
from llm.tokens import estimate_prompt_tokens
from services.profile import ANALYZE_INSTRUCTIONS
from tests.ai.conftest import TINY_CONTEXT_WINDOW, TINY_MAX_OUTPUT, TINY_MODEL
from tests.ai.helpers import bot_message, group_with_ai, open_ai_chat, set_chat_ai, socket_of
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply, RecordedRequest
from tests.support.server import LiveServer


def system_of(request: RecordedRequest) -> str:
    return "\n".join(m["content"] for m in request.json["messages"] if m["role"] == "system")


def turns_of(request: RecordedRequest) -> list[ChatTurn]:
    return [
        ChatTurn(m["role"], m["content"]) for m in request.json["messages"] if m["role"] != "system"
    ]


async def test_the_prompt_holds_only_the_newest_turns_that_fit_the_window(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    other_chat = await alice.create_group("Elsewhere", bob)
    await bob.send(other_chat["id"], "SECRET-OF-ANOTHER-CHAT")
    group_id = await group_with_ai(alice, bob)
    await set_chat_ai(alice, group_id, model=TINY_MODEL)
    history: list[str] = []
    for i in range(30):
        author = (alice, bob)[i % 2]
        text = f"message {i:02d} about the weather in our little town"
        await author.send(group_id, text)
        history.append(f"{author.first_name}: {text}")
    async with socket_of(server, alice) as ws:
        await bob.send(group_id, "@test_ai_bot summarise, please")
        await bot_message(ws)
    history.append("Bob: @test_ai_bot summarise, please")

    request = fake_llm.requests[-1]
    assert request.json["model"] == "tiny-context-1"
    assert request.json["max_completion_tokens"] == TINY_MAX_OUTPUT
    turns = turns_of(request)
    assert {turn.role for turn in turns} == {"user"}
    contents = [turn.content for turn in turns]
    assert 5 <= len(contents) < len(history)
    assert contents == history[-len(contents) :]  # the newest, the question last
    assert estimate_prompt_tokens(system_of(request), turns) <= (
        TINY_CONTEXT_WINDOW - TINY_MAX_OUTPUT
    )
    assert "SECRET-OF-ANOTHER-CHAT" not in str(request.json)


async def test_the_message_being_answered_is_always_in_the_prompt(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    chat_id = await open_ai_chat(alice)
    await set_chat_ai(alice, chat_id, model=TINY_MODEL)
    huge = " ".join(f"paragraph{i}" for i in range(250))  # alone more than the window
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "a short warm-up")
        await bot_message(ws)
        await alice.send(chat_id, huge)
        await bot_message(ws)
    assert turns_of(fake_llm.requests[-1]) == [ChatTurn("user", huge)]


async def test_group_history_names_each_sender(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    fake_llm.script(
        FakeReply(text="Alice likes tea, Bob coffee."), FakeReply(text="You're welcome.")
    )
    group_id = await group_with_ai(alice, bob, title="Breakfast club")
    async with socket_of(server, alice) as ws:
        await alice.send(group_id, "I like tea")
        await bob.send(group_id, "I prefer coffee")
        await alice.send(group_id, "@test_ai_bot who likes what?")
        await bot_message(ws)
        await bob.send(group_id, "thanks @test_ai_bot")
        await bot_message(ws)

    first, second = fake_llm.requests
    assert 'group chat "Breakfast club"' in system_of(first)
    assert turns_of(first) == [
        ChatTurn("user", "Alice: I like tea"),
        ChatTurn("user", "Bob: I prefer coffee"),
        ChatTurn("user", "Alice: @test_ai_bot who likes what?"),
    ]
    assert turns_of(second)[-2:] == [
        ChatTurn("assistant", "Alice likes tea, Bob coffee."),  # its own words, no name
        ChatTurn("user", "Bob: thanks @test_ai_bot"),
    ]


PROFILE: dict[str, Any] = {
    "values": [{"name": "honesty", "weight": 0.9}, {"name": "calm", "weight": 0.4}],
    "beliefs": [],
    "interests": ["chess", "jazz"],
    "skills": ["python"],
    "desires": [],
    "intentions": ["learn Spanish"],
}


async def test_the_profile_personalises_the_direct_chat_only_when_enabled(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    saved = await alice.ok("PUT", "/api/v1/profile", json={"enabled": True, "data": PROFILE})
    assert saved == {"enabled": True, "data": PROFILE}
    assert await alice.ok("GET", "/api/v1/profile") == saved
    chat_id = await open_ai_chat(alice)
    group_id = await group_with_ai(alice)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "what should I do tonight?")
        await bot_message(ws)
        await alice.send(group_id, "@test_ai_bot what should we do tonight?")
        await bot_message(ws)
        await alice.ok("PUT", "/api/v1/profile", json={"enabled": False, "data": PROFILE})
        await alice.send(chat_id, "and tomorrow?")
        await bot_message(ws)

    direct, group, disabled = (system_of(r) for r in fake_llm.requests)
    assert "Values: honesty (0.9), calm (0.4)" in direct
    assert "Interests: chess; jazz" in direct
    assert "Intentions: learn Spanish" in direct
    assert "chess" not in group
    assert "chess" not in disabled


async def test_analyze_returns_suggestions_and_changes_nothing(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    fake_llm.script(
        FakeReply(
            text="Here is what I found:\n```json\n"
            '{"values": [{"name": "curiosity", "weight": 0.8}], "interests": ["astronomy"],'
            ' "skills": "not a list", "desires": ["travel"], "unknown": [1]}\n```'
        )
    )
    before = await alice.ok("GET", "/api/v1/profile")
    text = "I spend my nights looking at stars and dream of seeing the world."
    suggestions = await alice.ok("POST", "/api/v1/profile/analyze", json={"text": text})
    assert suggestions == {
        "values": [{"name": "curiosity", "weight": 0.8}],
        "beliefs": [],
        "interests": ["astronomy"],
        "skills": [],
        "desires": ["travel"],
        "intentions": [],
    }
    (request,) = fake_llm.requests
    assert system_of(request) == ANALYZE_INSTRUCTIONS
    assert turns_of(request) == [ChatTurn("user", text)]
    assert await alice.ok("GET", "/api/v1/profile") == before
    assert before["enabled"] is False
    assert await alice.ok("GET", "/api/v1/ai/usage") == []
