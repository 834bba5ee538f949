"""The ledger's holds at the service level: a reply holds its worst case, settling charges what
it cost and frees the hold, and two holds at once never take the balance below zero."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import MemoryBroker
from core.db import read_session, unit_of_work
from core.errors import PaymentRequired
from llm.catalogue import cost_micros
from models import AiReply
from services.billing.ledger import get_balance
from services.billing.quota import LedgerQuota
from tests.billing.conftest import PRICEY, config_with, pricey_worst_case
from tests.billing.helpers import add_reply
from tests.services.helpers import new_user

PROMPT_TOKENS = 100
WORST_CASE = cost_micros(PRICEY, PROMPT_TOKENS, 100)  # add_reply's max_tokens


async def test_a_hold_reserves_and_settling_charges_what_the_reply_cost(
    session: AsyncSession,
) -> None:
    quota = LedgerQuota(config_with(starting_grant=WORST_CASE * 2))
    user = await new_user(session, 13001, "Alice")
    reply = await add_reply(session, user)
    await quota.reserve(session, reply, pricey_worst_case(PROMPT_TOKENS, 100))
    held = await get_balance(session, quota.config, user.id)
    assert (held.balance, held.reserved, held.available) == (
        WORST_CASE * 2,
        WORST_CASE,
        WORST_CASE,
    )
    reply.cost_micros = 1_234
    await quota.settle(session, reply)
    await quota.settle(session, reply)  # settled twice, charged once
    settled = await get_balance(session, quota.config, user.id)
    assert (settled.balance, settled.reserved) == (WORST_CASE * 2 - 1_234, 0)


async def test_a_second_hold_the_balance_cannot_cover_besides_the_first_is_refused(
    session: AsyncSession,
) -> None:
    quota = LedgerQuota(config_with(starting_grant=WORST_CASE * 3 // 2))
    user = await new_user(session, 13002, "Bob")
    first, second = await add_reply(session, user), await add_reply(session, user)
    await quota.reserve(session, first, pricey_worst_case(PROMPT_TOKENS, 100))
    with pytest.raises(PaymentRequired) as refused:
        await quota.reserve(session, second, pricey_worst_case(PROMPT_TOKENS, 100))
    assert refused.value.code == "insufficient_balance"
    await quota.release(session, first)
    await quota.reserve(session, second, pricey_worst_case(PROMPT_TOKENS, 100))


@pytest.mark.postgres
async def test_two_holds_at_once_never_take_the_balance_below_zero(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each hold alone fits the balance, both together do not: on separate connections, at the
    same moment, exactly one is taken."""
    quota = LedgerQuota(config_with(starting_grant=WORST_CASE * 3 // 2))
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        user = await new_user(session, 13003, "Carol")
        await get_balance(session, quota.config, user.id)  # the account, with its grant
        reply_ids = [(await add_reply(session, user)).id for _ in range(2)]

    async def hold(reply_id: int) -> bool:
        try:
            async with unit_of_work(sessionmaker, MemoryBroker()) as session:
                reply = await session.get(AiReply, reply_id)
                assert reply is not None
                await quota.reserve(session, reply, pricey_worst_case(PROMPT_TOKENS, 100))
        except PaymentRequired:
            return False
        return True

    taken = await asyncio.gather(*(hold(reply_id) for reply_id in reply_ids))
    assert sorted(taken) == [False, True]
    async with read_session(sessionmaker) as session:
        balance = await get_balance(session, quota.config, user.id)
    assert (balance.balance, balance.reserved) == (WORST_CASE * 3 // 2, WORST_CASE)
    assert balance.available >= 0
