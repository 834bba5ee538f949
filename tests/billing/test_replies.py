"""Paying for AI replies end to end: a live API whose AI streams from the fake vendor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from llm.catalogue import cost_micros
from models import AiReply
from services.billing.config import BillingConfig
from services.billing.ledger import grant_credits
from services.users import user_by_telegram_id
from tests.ai.helpers import (
    follow_reply,
    group_with_ai,
    open_ai_chat,
    reassemble,
    reply_row,
    socket_of,
)
from tests.billing.conftest import PRICEY, STARTING_GRANT, AppFactory
from tests.billing.helpers import Sessionmaker, ledger_state
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply

MAX_OUTPUT_COST = PRICEY.max_output_tokens * PRICEY.output_price // 1_000_000


async def _balance(user: ApiUser) -> dict[str, Any]:
    body: dict[str, Any] = await user.ok("GET", "/api/v1/billing/balance")
    return body


async def test_a_reply_holds_its_worst_case_then_pays_what_it_cost(
    start_app: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(FakeReply(text="A paid answer.", input_tokens=40, output_tokens=10))
    cost = cost_micros(PRICEY, 40, 10)
    async with start_app() as app:
        alice = await app.sign_up(6001, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "what does this cost?")
            held = await ws.wait_for("balance_changed")
            reply = await follow_reply(ws)
            settled = await ws.wait_for("balance_changed")
        assert reply.end["type"] == "ai_reply_done"
        assert held["balance"] == STARTING_GRANT
        assert held["available"] <= STARTING_GRANT - MAX_OUTPUT_COST
        assert settled == {
            "type": "balance_changed",
            "balance": STARTING_GRANT - cost,
            "available": STARTING_GRANT - cost,
            "currency": "credits",
        }
        assert await _balance(alice) == {
            "balance": STARTING_GRANT - cost,
            "reserved": 0,
            "available": STARTING_GRANT - cost,
            "currency": "credits",
        }
        page = await alice.ok("GET", "/api/v1/billing/transactions")
        usage, grant = page["items"]
        assert (usage["kind"], usage["amount"], usage["reply_id"]) == (
            "usage",
            -cost,
            reply.reply_id,
        )
        assert usage["balance_after"] == STARTING_GRANT - cost
        assert (grant["kind"], grant["amount"]) == ("grant", STARTING_GRANT)
    assert (await reply_row(billing_sessionmaker, reply.reply_id)).cost_micros == cost
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert state.entries_sum == state.balance


async def test_a_reply_the_balance_cannot_cover_is_refused_with_402(
    start_app: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    async with start_app(billing_starting_grant_micros=MAX_OUTPUT_COST // 2) as app:
        alice = await app.sign_up(6002, "Alice")
        chat_id = await open_ai_chat(alice)
        refused = await alice.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "hi"})
        assert refused.status_code == 402
        body = refused.json()
        assert body["code"] == "insufficient_balance"
        assert body["status_code"] == 402
        assert body["needed_micros"] > MAX_OUTPUT_COST
        assert body["available_micros"] == MAX_OUTPUT_COST // 2
        assert "Insufficient balance" in body["error"]
        assert (await _balance(alice))["balance"] == MAX_OUTPUT_COST // 2
        history = await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages")
        assert history["messages"] == []
    async with billing_sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AiReply)) == 0
    assert fake_llm.requests == []


async def test_a_failed_reply_costs_nothing(
    start_app: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(FakeReply(status=401))
    async with start_app() as app:
        alice = await app.sign_up(6003, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "this will fail")
            held = await ws.wait_for("balance_changed")
            reply = await follow_reply(ws)
        assert reply.end["type"] == "ai_reply_failed"
        assert held["available"] < STARTING_GRANT
        assert await _balance(alice) == {
            "balance": STARTING_GRANT,
            "reserved": 0,
            "available": STARTING_GRANT,
            "currency": "credits",
        }
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert (state.balance, state.reserved, state.holds) == (STARTING_GRANT, 0, 0)
    assert [kind.value for kind in state.kinds] == ["grant"]


async def test_a_cancelled_reply_costs_what_it_produced(
    start_app: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    full = " ".join(f"word{i}" for i in range(400))
    fake_llm.script(FakeReply(text=full, chunk_size=4, delay=0.02))
    async with start_app() as app:
        alice = await app.sign_up(6004, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "talk for a long time")
            held = await ws.wait_for("balance_changed")
            started = await ws.wait_for("ai_reply_started")
            deltas = [await ws.wait_for("ai_reply_delta")]
            while len(reassemble(deltas)) < 20:
                deltas.append(await ws.wait_for("ai_reply_delta"))
            await alice.ok("POST", f"/api/v1/ai/replies/{started['reply_id']}/cancel")
            reply = await follow_reply(ws, started=started, deltas=deltas)
            settled = await ws.wait_for("balance_changed")
        assert reply.end["incomplete"] is True
    row = await reply_row(billing_sessionmaker, reply.reply_id)
    worst_case = STARTING_GRANT - held["available"]
    assert 0 < row.cost_micros < worst_case
    assert settled["balance"] == settled["available"] == STARTING_GRANT - row.cost_micros
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert (state.balance, state.reserved) == (STARTING_GRANT - row.cost_micros, 0)
    assert state.entries_sum == state.balance


async def test_in_a_group_the_user_who_asked_pays(
    start_app: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(FakeReply(text="Bob pays for this.", input_tokens=50, output_tokens=20))
    async with start_app() as app:
        alice = await app.sign_up(6005, "Alice")
        bob = await app.sign_up(6006, "Bob")
        group_id = await group_with_ai(alice, bob)
        async with socket_of(app.server, bob) as ws:
            await bob.send(group_id, "@test_ai_bot how much is this?")
            reply = await follow_reply(ws)
            settled = await ws.wait_for("balance_changed")
        assert reply.end["type"] == "ai_reply_done"
        cost = cost_micros(PRICEY, 50, 20)
        assert settled["balance"] == STARTING_GRANT - cost
        assert (await _balance(bob))["balance"] == STARTING_GRANT - cost
        assert (await _balance(alice))["balance"] == STARTING_GRANT
    assert (await reply_row(billing_sessionmaker, reply.reply_id)).requested_by == bob.id


async def test_transactions_are_paged_newest_first(
    start_app: AppFactory, billing_sessionmaker: Sessionmaker
) -> None:
    async with start_app() as app:
        alice = await app.sign_up(6007, "Alice")
        async with billing_sessionmaker() as session, session.begin():
            user = await user_by_telegram_id(session, alice.telegram_id)
            config = BillingConfig.from_settings(app.context.settings)
            for amount in range(1, 6):
                await grant_credits(session, config, user, amount, reason=f"gift {amount}")
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await alice.ok("GET", "/api/v1/billing/transactions", params=params)
            seen.extend(page["items"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert [item["amount"] for item in seen] == [5, 4, 3, 2, 1, STARTING_GRANT]
        assert [item["reason"] for item in seen][:2] == ["gift 5", "gift 4"]
        ids = [item["id"] for item in seen]
        assert ids == sorted(ids, reverse=True)
        bad = await alice.get("/api/v1/billing/transactions", params={"cursor": "nope"})
        assert (bad.status_code, bad.json()["code"]) == (422, "bad_cursor")


async def test_prices_list_the_models_and_the_packages(start_app: AppFactory) -> None:
    async with start_app() as app:
        alice = await app.sign_up(6008, "Alice")
        prices = await alice.ok("GET", "/api/v1/billing/prices")
    assert prices["billing_enabled"] is True
    assert {
        "id": PRICEY.id,
        "display_name": PRICEY.display_name,
        "input_price": PRICEY.input_price,
        "output_price": PRICEY.output_price,
    } in prices["models"]
    assert prices["packages"] == [
        {"id": "small", "title": "1 credit", "stars": 50, "credits": 1_000_000},
        {"id": "large", "title": "6 credits", "stars": 250, "credits": 6_000_000},
    ]
    assert (prices["starting_grant"], prices["daily_free"]) == (STARTING_GRANT, 0)
