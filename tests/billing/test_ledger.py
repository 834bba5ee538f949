"""The ledger and the quota it implements, at the service level, on the suite's backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from core.broker import MemoryBroker
from core.db import unit_of_work
from core.errors import BadRequest, Conflict, PaymentRequired
from llm.catalogue import cost_micros
from models import AiReply, LedgerKind
from services.billing import ledger
from services.billing.config import BillingConfig
from services.billing.quota import LedgerQuota
from tests.billing.conftest import PRICEY, STARTING_GRANT, config_with, pricey_worst_case
from tests.billing.helpers import Sessionmaker, entries_of, ledger_state, new_reply, new_user

PROMPT_TOKENS = 100
# 100 prompt tokens at 100 micro-credits and 100 output tokens at 200: 30,000
WORST_CASE = cost_micros(PRICEY, PROMPT_TOKENS, 100)


async def _reserve(
    sessionmaker: Sessionmaker, quota: LedgerQuota, reply_id: int, prompt_tokens: int
) -> None:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        reply = await session.get(AiReply, reply_id)
        assert reply is not None
        await quota.reserve(session, reply, pricey_worst_case(prompt_tokens, reply.max_tokens))


async def _settle(sessionmaker: Sessionmaker, quota: LedgerQuota, reply_id: int, cost: int) -> None:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        reply = await session.get(AiReply, reply_id)
        assert reply is not None
        reply.cost_micros = cost
        await quota.settle(session, reply)


async def _release(sessionmaker: Sessionmaker, quota: LedgerQuota, reply_id: int) -> None:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        reply = await session.get(AiReply, reply_id)
        assert reply is not None
        await quota.release(session, reply)


def test_credits_are_formatted_and_parsed_exactly() -> None:
    assert ledger.format_credits(1_500_000) == "1.5"
    assert ledger.format_credits(1) == "0.000001"
    assert ledger.format_credits(0) == "0"
    assert ledger.format_credits(-2_000_000) == "-2"
    assert ledger.credits_to_micros(Decimal("1.5")) == 1_500_000
    assert ledger.credits_to_micros(Decimal("-0.000001")) == -1
    assert ledger.credits_to_micros(Decimal("0.1")) == 100_000  # no float on the way
    with pytest.raises(BadRequest):
        ledger.credits_to_micros(Decimal("0.0000001"))
    with pytest.raises(BadRequest):
        ledger.credits_to_micros(Decimal("Infinity"))


async def test_a_new_user_gets_the_starting_grant_once_even_on_concurrent_first_use(
    billing_sessionmaker: Sessionmaker, config: BillingConfig
) -> None:
    user = await new_user(billing_sessionmaker, 5001)

    async def first_use() -> int:
        async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
            return (await ledger.get_balance(session, config, user.id)).balance

    assert await asyncio.gather(*(first_use() for _ in range(10))) == [STARTING_GRANT] * 10
    state = await ledger_state(billing_sessionmaker, user.id)
    assert state.kinds == [LedgerKind.GRANT]
    assert state.balance == state.entries_sum == STARTING_GRANT
    [entry] = await entries_of(billing_sessionmaker, user.id)
    assert entry.idempotency_key == f"grant:start:{user.id}"


async def test_without_a_starting_grant_an_account_starts_empty(
    billing_sessionmaker: Sessionmaker,
) -> None:
    user = await new_user(billing_sessionmaker, 5002)
    async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
        balance = await ledger.get_balance(session, config_with(starting_grant=0), user.id)
    assert (balance.balance, balance.available) == (0, 0)
    assert await entries_of(billing_sessionmaker, user.id) == []


async def test_the_daily_free_allowance_is_granted_once_a_day(
    billing_sessionmaker: Sessionmaker,
) -> None:
    config = config_with(daily_free=5_000)
    user = await new_user(billing_sessionmaker, 5003)
    for _ in range(3):
        async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
            await ledger.get_balance(session, config, user.id)
    state = await ledger_state(billing_sessionmaker, user.id)
    assert state.kinds == [LedgerKind.GRANT, LedgerKind.GRANT]
    assert state.balance == state.entries_sum == STARTING_GRANT + 5_000
    keys = [entry.idempotency_key for entry in await entries_of(billing_sessionmaker, user.id)]
    assert keys[1].startswith(f"grant:daily:{user.id}:")


async def test_a_reply_reserves_its_worst_case_then_pays_what_it_cost(
    billing_sessionmaker: Sessionmaker, config: BillingConfig
) -> None:
    quota = LedgerQuota(config)
    user = await new_user(billing_sessionmaker, 5004)
    reply = await new_reply(billing_sessionmaker, user)

    await _reserve(billing_sessionmaker, quota, reply.id, PROMPT_TOKENS)
    held = await ledger_state(billing_sessionmaker, user.id)
    assert (held.balance, held.reserved, held.holds) == (STARTING_GRANT, WORST_CASE, 1)

    await _settle(billing_sessionmaker, quota, reply.id, 12_345)
    await _settle(billing_sessionmaker, quota, reply.id, 12_345)  # settled twice: charged once
    settled = await ledger_state(billing_sessionmaker, user.id)
    assert (settled.balance, settled.reserved, settled.holds) == (STARTING_GRANT - 12_345, 0, 0)
    assert settled.entries_sum == settled.balance
    usage = (await entries_of(billing_sessionmaker, user.id))[-1]
    assert (usage.kind, usage.amount, usage.reply_id) == (LedgerKind.USAGE, -12_345, reply.id)
    assert usage.idempotency_key == f"usage:{reply.id}"
    assert usage.balance_after == settled.balance


async def test_a_failed_reply_costs_nothing_and_frees_its_reservation(
    billing_sessionmaker: Sessionmaker, config: BillingConfig
) -> None:
    quota = LedgerQuota(config)
    user = await new_user(billing_sessionmaker, 5005)
    reply = await new_reply(billing_sessionmaker, user)
    await _reserve(billing_sessionmaker, quota, reply.id, PROMPT_TOKENS)
    await _release(billing_sessionmaker, quota, reply.id)
    await _release(billing_sessionmaker, quota, reply.id)
    state = await ledger_state(billing_sessionmaker, user.id)
    assert (state.balance, state.reserved, state.holds) == (STARTING_GRANT, 0, 0)
    assert state.kinds == [LedgerKind.GRANT]


async def test_a_reply_the_balance_cannot_cover_is_refused_with_the_amount_needed(
    billing_sessionmaker: Sessionmaker,
) -> None:
    quota = LedgerQuota(config_with(starting_grant=WORST_CASE - 1))
    user = await new_user(billing_sessionmaker, 5006)
    reply = await new_reply(billing_sessionmaker, user)
    with pytest.raises(PaymentRequired) as refused:
        await _reserve(billing_sessionmaker, quota, reply.id, PROMPT_TOKENS)
    assert refused.value.code == "insufficient_balance"
    assert refused.value.extra == {"needed_micros": WORST_CASE, "available_micros": WORST_CASE - 1}
    assert "0.03" in refused.value.message  # the worst case, in credits


async def test_credits_held_for_one_reply_cannot_pay_for_another(
    billing_sessionmaker: Sessionmaker,
) -> None:
    quota = LedgerQuota(config_with(starting_grant=WORST_CASE * 3 // 2))
    user = await new_user(billing_sessionmaker, 5007)
    first, second = [await new_reply(billing_sessionmaker, user) for _ in range(2)]
    await _reserve(billing_sessionmaker, quota, first.id, PROMPT_TOKENS)
    with pytest.raises(PaymentRequired):
        await _reserve(billing_sessionmaker, quota, second.id, PROMPT_TOKENS)
    await _settle(billing_sessionmaker, quota, first.id, WORST_CASE // 10)
    await _reserve(billing_sessionmaker, quota, second.id, PROMPT_TOKENS)


async def test_a_reply_that_cost_more_than_is_left_takes_the_balance_to_zero_not_below(
    billing_sessionmaker: Sessionmaker,
) -> None:
    # The reservation rests on an estimate of the prompt; the vendor may count more.
    quota = LedgerQuota(config_with(starting_grant=WORST_CASE))
    user = await new_user(billing_sessionmaker, 5008)
    reply = await new_reply(billing_sessionmaker, user)
    await _reserve(billing_sessionmaker, quota, reply.id, PROMPT_TOKENS)
    await _settle(billing_sessionmaker, quota, reply.id, WORST_CASE + 5_000)
    state = await ledger_state(billing_sessionmaker, user.id)
    assert (state.balance, state.reserved, state.entries_sum) == (0, 0, 0)
    usage = (await entries_of(billing_sessionmaker, user.id))[-1]
    assert usage.amount == -WORST_CASE
    assert usage.reason == "capped at the available balance"


@pytest.mark.parametrize(
    "cost",
    [pytest.param(WORST_CASE * 4 // 5, id="within"), pytest.param(WORST_CASE * 2, id="over")],
)
async def test_concurrent_replies_beyond_the_balance_never_take_it_below_zero(
    billing_sessionmaker: Sessionmaker, cost: int
) -> None:
    """Ten replies at once, together worth far more than the balance; some are refused, and the
    ledger still adds up."""
    quota = LedgerQuota(config_with())
    user = await new_user(billing_sessionmaker, 5009)
    replies = [await new_reply(billing_sessionmaker, user) for _ in range(10)]

    async def reply_once(reply_id: int) -> bool:
        try:
            await _reserve(billing_sessionmaker, quota, reply_id, PROMPT_TOKENS)
        except PaymentRequired:
            return False
        await _settle(billing_sessionmaker, quota, reply_id, cost)
        return True

    answered = await asyncio.gather(*(reply_once(reply.id) for reply in replies))
    state = await ledger_state(billing_sessionmaker, user.id)
    assert 1 <= sum(answered) < 10
    assert state.balance >= 0
    assert (state.reserved, state.holds) == (0, 0)
    assert state.balance == state.entries_sum
    assert state.kinds.count(LedgerKind.USAGE) == sum(answered)
    entries = await entries_of(billing_sessionmaker, user.id)
    assert all(entry.balance_after >= 0 for entry in entries)
    if cost <= WORST_CASE:
        assert state.balance == STARTING_GRANT - cost * sum(answered)


async def test_an_operator_grant_and_an_adjustment_that_may_not_overdraw(
    billing_sessionmaker: Sessionmaker, config: BillingConfig
) -> None:
    user = await new_user(billing_sessionmaker, 5010)
    async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
        granted = await ledger.grant_credits(session, config, user, 50_000, reason="a gift")
        taken = await ledger.grant_credits(session, config, user, -20_000, reason="a mistake")
    assert (granted.kind, granted.balance_after) == (LedgerKind.GRANT, STARTING_GRANT + 50_000)
    assert (taken.kind, taken.balance_after) == (LedgerKind.ADJUSTMENT, STARTING_GRANT + 30_000)
    with pytest.raises(Conflict) as refused:
        async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
            await ledger.grant_credits(session, config, user, -STARTING_GRANT * 2, reason="no")
    assert refused.value.code == "insufficient_balance"
    state = await ledger_state(billing_sessionmaker, user.id)
    assert state.balance == state.entries_sum == STARTING_GRANT + 30_000


async def test_the_bots_balance_text_is_in_credits(
    billing_sessionmaker: Sessionmaker, config: BillingConfig
) -> None:
    quota = LedgerQuota(config)
    user = await new_user(billing_sessionmaker, 5011)
    reply = await new_reply(billing_sessionmaker, user)
    await _reserve(billing_sessionmaker, quota, reply.id, PROMPT_TOKENS)
    async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
        text = await quota.describe(session, user)
    assert text.startswith("Your balance: 0.1 credits. 0.03 of them are held")
    assert "/topup" in text
