"""What an AI reply may cost, before it starts and after it ends.

The AI participant calls `reserve` before a reply starts and exactly one of `settle` (it produced
something: charge what it used) or `release` (it failed: charge nothing) after it ends. With
BILLING_ENABLED=true replies are paid from the ledger (`LedgerQuota`): a reply's worst case is
held from the payer's balance until it ends, then what it actually cost is charged and the rest
is free again (a failed reply is charged nothing). With BILLING_ENABLED=false, a daily token
allowance per user applies instead (`DailyTokenAllowance`). What a job may cost is
`services.ai.pricing`'s to say.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PaymentRequired
from models import AiReply, AiReplyStatus, BillingAccount, BillingHold, LedgerKind, User
from services.billing.config import BillingConfig
from services.billing.ledger import (
    apply_entry,
    find_entry,
    format_credits,
    open_account,
    stage_balance_changed,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The most a job may use: `tokens` (its prompt and output) and `micros`, everything it
    may use (tokens, audio, speech, images) priced."""

    tokens: int
    micros: int


class QuotaPolicy(ABC):
    @abstractmethod
    async def reserve(self, session: AsyncSession, reply: AiReply, worst: WorstCase) -> None:
        """Refuse (PaymentRequired) a reply whose worst case the user cannot cover."""

    @abstractmethod
    async def settle(self, session: AsyncSession, reply: AiReply) -> None:
        """The reply ended with output: `reply.cost_micros` is what it cost."""

    @abstractmethod
    async def release(self, session: AsyncSession, reply: AiReply) -> None:
        """The reply failed: nothing is charged."""

    @abstractmethod
    async def describe(self, session: AsyncSession, user: User) -> str:
        """What the user has left, in a sentence (the bot's /balance)."""


def _start_of_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class DailyTokenAllowance(QuotaPolicy):
    """Each user may spend this many tokens (input plus output) per UTC day. Media (audio
    heard, speech, images) are not tokens and are not limited by it: without billing, the
    per-user rate of AI requests bounds them."""

    def __init__(self, tokens_per_day: int) -> None:
        self.tokens_per_day = tokens_per_day

    async def used_today(self, session: AsyncSession, user_id: int | None) -> int:
        used = await session.scalar(
            select(func.coalesce(func.sum(AiReply.input_tokens + AiReply.output_tokens), 0)).where(
                AiReply.requested_by == user_id,
                AiReply.created_at >= _start_of_today(),
                AiReply.status.in_((AiReplyStatus.DONE, AiReplyStatus.CANCELLED)),
            )
        )
        return int(used or 0)

    async def reserve(self, session: AsyncSession, reply: AiReply, worst: WorstCase) -> None:
        today = _start_of_today()
        needed = worst.tokens
        if await self.used_today(session, reply.requested_by) + needed > self.tokens_per_day:
            raise PaymentRequired(
                "Today's AI allowance is used up",
                code="daily_allowance_exhausted",
                resets_at=(today + timedelta(days=1)).isoformat(),
            )

    async def settle(self, session: AsyncSession, reply: AiReply) -> None:
        """Usage is recorded on the reply itself; nothing more to write."""

    async def release(self, session: AsyncSession, reply: AiReply) -> None:
        """A failed reply records no usage."""

    async def describe(self, session: AsyncSession, user: User) -> str:
        used = await self.used_today(session, user.id)
        left = max(0, self.tokens_per_day - used)
        return f"Today you have used {used} of {self.tokens_per_day} tokens; {left} are left."


async def _take_hold(session: AsyncSession, reply_id: int) -> int:
    held = await session.scalar(
        delete(BillingHold).where(BillingHold.reply_id == reply_id).returning(BillingHold.amount)
    )
    return int(held or 0)


class LedgerQuota(QuotaPolicy):
    """Replies are paid from the balance of the user who asked for them."""

    def __init__(self, config: BillingConfig) -> None:
        self.config = config

    async def reserve(self, session: AsyncSession, reply: AiReply, worst: WorstCase) -> None:
        if reply.requested_by is None:
            raise ValueError(f"reply {reply.id} has no payer to reserve its cost from")
        needed = worst.micros
        account = await open_account(session, self.config, reply.requested_by)
        available = account.balance - account.reserved
        if needed > available:
            raise PaymentRequired(
                f"Insufficient balance: this reply may cost up to {format_credits(needed)}"
                f" credits and {format_credits(available)} are available",
                code="insufficient_balance",
                needed_micros=needed,
                available_micros=available,
            )
        account.reserved += needed
        session.add(BillingHold(reply_id=reply.id, user_id=account.user_id, amount=needed))
        await session.flush()
        stage_balance_changed(session, account)

    async def _payer(self, session: AsyncSession, reply: AiReply) -> BillingAccount | None:
        hold = await session.get(BillingHold, reply.id)
        payer = hold.user_id if hold is not None else reply.requested_by
        return await open_account(session, self.config, payer) if payer is not None else None

    async def settle(self, session: AsyncSession, reply: AiReply) -> None:
        account = await self._payer(session, reply)
        key = f"usage:{reply.id}"
        if account is None or await find_entry(session, key) is not None:
            return
        account.reserved -= await _take_hold(session, reply.id)
        # The estimate of the prompt may fall short of what the vendor counted; what the user
        # does not have is not charged, rather than take the balance below zero.
        charge = min(reply.cost_micros, account.balance - account.reserved)
        if charge < reply.cost_micros:
            logger.warning(
                "reply %s cost %s micro-credits; its payer had %s",
                reply.id,
                reply.cost_micros,
                charge,
            )
        if charge > 0:
            reason = None if charge == reply.cost_micros else "capped at the available balance"
            await apply_entry(
                session, account, LedgerKind.USAGE, -charge, key, reason=reason, reply_id=reply.id
            )
        else:
            await session.flush()
        stage_balance_changed(session, account)

    async def release(self, session: AsyncSession, reply: AiReply) -> None:
        hold = await session.get(BillingHold, reply.id)
        if hold is None:
            return
        account = await open_account(session, self.config, hold.user_id)
        account.reserved -= await _take_hold(session, reply.id)
        await session.flush()
        stage_balance_changed(session, account)

    async def describe(self, session: AsyncSession, user: User) -> str:
        account = await open_account(session, self.config, user.id)
        text = f"Your balance: {format_credits(account.balance)} credits."
        if account.reserved:
            text += f" {format_credits(account.reserved)} of them are held for replies in progress."
        return text + " Top up with /topup."
