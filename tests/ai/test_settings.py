"""The AI's settings per chat, the model list, and what each user's replies used and cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from llm.catalogue import DEFAULT_MODELS, cost_micros
from models import AiReply, AiReplyStatus
from tests.ai.conftest import CLAUDE_MODEL, DEFAULT_MODEL, TINY_MODEL, OwnAppFactory
from tests.ai.helpers import bot_message, group_with_ai, open_ai_chat, set_chat_ai, socket_of
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer


async def test_the_models_are_listed_with_their_limits_and_prices(alice: ApiUser) -> None:
    models = await alice.ok("GET", "/api/v1/llm/models")
    chat_models = [m.id for m in DEFAULT_MODELS if m.kind == "chat"]  # no whisper-1, no tts-1
    assert [m["id"] for m in models] == [*chat_models, TINY_MODEL]
    mini = next(m for m in models if m["id"] == DEFAULT_MODEL)
    assert mini == {
        "id": "gpt-4o-mini",
        "provider": "openai",
        "display_name": "GPT-4o mini",
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "input_price": 150_000,
        "output_price": 600_000,
    }


async def test_group_ai_settings_are_for_admins_to_change(
    alice: ApiUser, bob: ApiUser, carol: ApiUser
) -> None:
    group_id = await group_with_ai(alice, bob)
    path = f"/api/v1/chats/{group_id}/ai"
    as_member = await bob.ok("GET", path)
    assert as_member == {
        "chat_id": group_id,
        "mode": "mention",
        "model": None,
        "persona": None,
        "temperature": None,
        "voice_replies": False,
        "can_edit": False,
    }
    for change in ({"mode": "always"}, {"voice_replies": True}):
        refused = await bob.put(path, json=change)
        assert (refused.status_code, refused.json()["code"]) == (403, "not_chat_admin")
    assert (await carol.get(path)).status_code == 404  # not a member: no such chat

    changed = await alice.ok(
        "PUT",
        path,
        json={"mode": "always", "model": CLAUDE_MODEL, "persona": "p" * 4000, "temperature": 2},
    )
    assert (changed["mode"], changed["model"], changed["temperature"]) == (
        "always",
        CLAUDE_MODEL,
        2,
    )
    assert changed["persona"] == "p" * 4000
    assert changed["can_edit"] is True
    assert (await bob.ok("GET", path))["mode"] == "always"

    await alice.ok("PATCH", f"/api/v1/chats/{group_id}/members/{bob.id}", json={"role": "admin"})
    reset = await bob.ok("PUT", path, json={"model": None, "persona": "  ", "temperature": 0})
    assert (reset["model"], reset["persona"], reset["temperature"]) == (None, None, 0)
    assert reset["mode"] == "always"  # what a PUT leaves out stays as it was


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"persona": "p" * 4001}, 422, "validation_error"),
        ({"temperature": 2.01}, 422, "validation_error"),
        ({"temperature": -0.1}, 422, "validation_error"),
        ({"mode": "sometimes"}, 422, "validation_error"),
        ({"model": "gpt-99-ultra"}, 400, "unknown_model"),
        ({"colour": "blue"}, 422, "validation_error"),
    ],
)
async def test_bad_ai_settings_are_refused(
    alice: ApiUser, change: dict[str, object], status: int, code: str
) -> None:
    group_id = await group_with_ai(alice)
    response = await alice.put(f"/api/v1/chats/{group_id}/ai", json=change)
    assert (response.status_code, response.json()["code"]) == (status, code)
    unchanged = await alice.ok("GET", f"/api/v1/chats/{group_id}/ai")
    assert (unchanged["model"], unchanged["persona"], unchanged["temperature"]) == (None,) * 3


async def test_the_direct_chat_takes_a_persona_and_temperature_but_always_answers(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    chat_id = await open_ai_chat(alice)
    fixed = await alice.put(f"/api/v1/chats/{chat_id}/ai", json={"mode": "off"})
    assert (fixed.status_code, fixed.json()["code"]) == (400, "mode_fixed")
    private = await alice.private_chat_with(bob)
    not_ai = await alice.put(f"/api/v1/chats/{private['id']}/ai", json={"mode": "always"})
    assert (not_ai.status_code, not_ai.json()["code"]) == (400, "not_ai_capable")

    settings = await set_chat_ai(alice, chat_id, persona="You are a pirate.", temperature=0.3)
    assert (settings["mode"], settings["can_edit"]) == ("always", True)
    async with socket_of(server, alice) as ws:
        await alice.send(chat_id, "ahoy")
        await bot_message(ws)
    (request,) = fake_llm.requests
    assert request.json["messages"][0] == {"role": "system", "content": "You are a pirate."}
    assert request.json["temperature"] == 0.3


async def test_usage_is_totalled_per_day_and_model(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    fake_llm.script(
        FakeReply(text="One.", input_tokens=10, output_tokens=5),
        FakeReply(text="Two.", input_tokens=20, output_tokens=7),
        FakeReply(text="Three.", input_tokens=30, output_tokens=9),
    )
    chat_id = await open_ai_chat(alice)
    reply_ids = []
    async with socket_of(server, alice) as ws:
        for text in ("first", "second"):
            await alice.send(chat_id, text)
            reply_ids.append((await ws.wait_for("ai_reply_done"))["reply_id"])
            await bot_message(ws)
        await set_chat_ai(alice, chat_id, model=CLAUDE_MODEL)
        await alice.send(chat_id, "third")
        await bot_message(ws)

    mini, claude = (
        next(m for m in DEFAULT_MODELS if m.id == i) for i in (DEFAULT_MODEL, CLAUDE_MODEL)
    )
    first = await alice.ok("GET", f"/api/v1/ai/replies/{reply_ids[0]}")
    assert (first["model"], first["input_tokens"], first["output_tokens"]) == (DEFAULT_MODEL, 10, 5)
    assert first["cost_micros"] == cost_micros(mini, 10, 5)
    assert first["message_id"] is not None
    assert first["finished_at"] is not None

    today = datetime.now(UTC).date().isoformat()
    assert await alice.ok("GET", "/api/v1/ai/usage") == [
        {
            "day": today,
            "model": CLAUDE_MODEL,
            "replies": 1,
            "input_tokens": 30,
            "output_tokens": 9,
            "cost_micros": cost_micros(claude, 30, 9),
        },
        {
            "day": today,
            "model": DEFAULT_MODEL,
            "replies": 2,
            "input_tokens": 30,
            "output_tokens": 12,
            "cost_micros": cost_micros(mini, 10, 5) + cost_micros(mini, 20, 7),
        },
    ]
    assert await bob.ok("GET", "/api/v1/ai/usage") == []
    assert (await alice.get("/api/v1/ai/usage", params={"days": 0})).status_code == 422
    # Another user's reply is not theirs to see.
    assert (await bob.get(f"/api/v1/ai/replies/{reply_ids[0]}")).status_code == 404


@pytest.mark.postgres
async def test_usage_days_are_utc_days_whatever_the_database_time_zone(
    own_app: OwnAppFactory, own_engine: AsyncEngine
) -> None:
    async with own_engine.begin() as connection:
        name = await connection.scalar(text("SELECT current_database()"))
        await connection.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Etc/GMT-14'"))
    late_yesterday = datetime.now(UTC).replace(hour=23, minute=0) - timedelta(days=1)
    try:
        async with own_app() as app:  # its connections are 14 hours ahead of UTC
            alice = await app.sign_up(261, "Alice")
            chat_id = await open_ai_chat(alice)
            async with own_engine.begin() as connection:
                await connection.execute(
                    insert(AiReply).values(
                        chat_id=chat_id,
                        requested_by=alice.id,
                        model=DEFAULT_MODEL,
                        provider="openai",
                        status=AiReplyStatus.DONE,
                        max_tokens=16,
                        input_tokens=3,
                        output_tokens=4,
                        created_at=late_yesterday,
                    )
                )
            (row,) = await alice.ok("GET", "/api/v1/ai/usage")
    finally:
        async with own_engine.begin() as connection:
            await connection.execute(text(f'ALTER DATABASE "{name}" RESET timezone'))
    assert row["day"] == late_yesterday.date().isoformat()
    assert (row["input_tokens"], row["output_tokens"]) == (3, 4)


async def test_voice_replies_need_a_speech_model(own_app: OwnAppFactory) -> None:
    # Only Anthropic: no endpoint for OpenAI's speech model.
    async with own_app(
        openai_api_key=None, openai_base_url=None, llm_models=None, llm_default_model=CLAUDE_MODEL
    ) as app:
        user = await app.sign_up(271, "Dee")
        chat_id = await open_ai_chat(user)
        refused = await user.put(f"/api/v1/chats/{chat_id}/ai", json={"voice_replies": True})
        assert (refused.status_code, refused.json()["code"]) == (503, "ai_speech_not_configured")
        settings = await user.ok("GET", f"/api/v1/chats/{chat_id}/ai")
        assert settings["voice_replies"] is False
        turned_off = await user.ok(
            "PUT", f"/api/v1/chats/{chat_id}/ai", json={"voice_replies": False}
        )
        assert turned_off["voice_replies"] is False
