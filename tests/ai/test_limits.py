"""Limits on the AI: one user's replies per minute, a daily token allowance, and a server with
no AI configured at all."""

from __future__ import annotations

from tests.ai.conftest import BOT_USERNAME, OwnAppFactory
from tests.ai.helpers import (
    answers_before,
    bot_message,
    follow_reply,
    group_with_ai,
    open_ai_chat,
    set_chat_ai,
    socket_of,
)
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.ws import new_message


async def test_a_user_over_the_per_minute_limit_gets_429(
    own_app: OwnAppFactory, fake_llm: FakeLLM
) -> None:
    async with own_app(ai_user_replies_per_minute=2) as app:
        alice = await app.sign_up(231, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            for text in ("one", "two"):
                await alice.send(chat_id, text)
                await bot_message(ws)
        refused = await alice.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "three"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "ai_rate_limited"
        history = await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages")
        assert [m["text"] for m in history["messages"] if not m["sender"]["is_bot"]] == [
            "one",
            "two",
        ]
    assert len(fake_llm.requests) == 2


async def test_an_exhausted_daily_allowance_gets_402(
    own_app: OwnAppFactory, fake_llm: FakeLLM
) -> None:
    # Her first reply leaves her 20 tokens, less than any prompt (and 16 to answer); Bob's
    # replies in the group (each prompt offering the tools) fit his 3000.
    fake_llm.script(FakeReply(text="Fine.", input_tokens=2970, output_tokens=10))
    async with own_app(
        billing_enabled=False, ai_daily_token_allowance=3000, ai_max_reply_tokens=16
    ) as app:
        alice = await app.sign_up(241, "Alice")
        bob = await app.sign_up(242, "Bob")
        chat_id = await open_ai_chat(alice)
        group_id = await group_with_ai(alice, bob)
        await set_chat_ai(alice, group_id, mode="always")
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "first")
            await bot_message(ws)
            refused = await alice.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "more"})
            assert refused.status_code == 402
            body = refused.json()
            assert body["code"] == "daily_allowance_exhausted"
            assert body["resets_at"].endswith("T00:00:00+00:00")

            # In a group that hears everything, her messages still go out; the AI keeps quiet
            # for her, and answers Bob.
            sent = await alice.send(group_id, "hello group")
            assert sent["text"] == "hello group"
            from_bob = await bob.send(group_id, "hello from Bob")
            await ws.none_before(
                "ai_reply_started",
                new_message(from_bob["id"]),
                where=answers_before(from_bob["id"]),
            )
            reply = await follow_reply(ws)
            assert reply.started["reply_to_message_id"] == from_bob["id"]

            # Named, the AI says why it will not answer her; her message stands, and no reply
            # to it is left waiting: the AI is free to answer Bob.
            await set_chat_ai(alice, group_id, mode="mention")
            sent = await alice.send(group_id, f"@{BOT_USERNAME} one more")
            refused_in_group = await ws.wait_for("ai_reply_failed")
            assert refused_in_group == {
                "type": "ai_reply_failed",
                "reply_id": None,
                "chat_id": group_id,
                "reply_to_message_id": sent["id"],
                "code": "daily_allowance_exhausted",
                "message": "Today's AI allowance is used up",
            }
            from_bob = await bob.send(group_id, f"@{BOT_USERNAME} and me?")
            reply = await follow_reply(ws)
            assert reply.started["reply_to_message_id"] == from_bob["id"]
    assert len(fake_llm.requests) == 3


async def test_without_a_provider_the_app_runs_and_the_ai_says_not_configured(
    own_app: OwnAppFactory, fake_llm: FakeLLM
) -> None:
    async with own_app(openai_api_key=None, anthropic_api_key=None) as app:
        assert (await app.client.get("/health/ready")).status_code == 200
        alice = await app.sign_up(251, "Alice")
        assert await alice.ok("GET", "/api/v1/llm/models") == []
        chat_id = await open_ai_chat(alice)
        refused = await alice.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "hi"})
        assert refused.status_code == 503
        assert refused.json()["code"] == "ai_not_configured"
        analyze = await alice.post("/api/v1/profile/analyze", json={"text": "I like chess"})
        assert (analyze.status_code, analyze.json()["code"]) == (503, "ai_not_configured")
        settings = await alice.ok("GET", f"/api/v1/chats/{chat_id}/ai")
        assert (settings["mode"], settings["model"]) == ("always", None)
        # Everything else works: a group without the AI, messages in it.
        group = await alice.create_group("Humans only")
        assert (await alice.send(group["id"], "hi all"))["text"] == "hi all"
    assert fake_llm.requests == []


async def test_the_ais_own_messages_are_never_send_limited(
    own_app: OwnAppFactory, fake_llm: FakeLLM
) -> None:
    # One send per user: the bot's two replies (to two users) would be over any user's burst.
    async with own_app(send_burst=1, sends_per_minute=1) as app:
        alice = await app.sign_up(235, "Alice")
        bob = await app.sign_up(236, "Bob")
        for user in (alice, bob):
            chat_id = await open_ai_chat(user)
            async with socket_of(app.server, user) as ws:
                await user.send(chat_id, "hello")
                assert (await follow_reply(ws)).end["type"] == "ai_reply_done"
                assert (await bot_message(ws))["sender"]["is_bot"] is True
            refused = await user.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "more"})
            assert (refused.status_code, refused.json()["code"]) == (429, "send_rate_limited")
    assert len(fake_llm.requests) == 2
