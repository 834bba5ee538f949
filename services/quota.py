"""What an AI reply may cost, before it starts and after it ends.

The AI participant calls `reserve` before a reply starts and exactly one of `settle` (it produced
something: charge what it used) or `release` (it failed: charge nothing) after it ends. The
billing ledger (`services.billing.LedgerQuota`) implements the same interface; with
BILLING_ENABLED=false, a daily token allowance per user applies instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PaymentRequired
from llm.catalogue import ModelInfo
from models import AiReply, AiReplyStatus, User


class QuotaPolicy(ABC):
    @abstractmethod
    async def reserve(
        self, session: AsyncSession, reply: AiReply, model: ModelInfo, prompt_tokens: int
    ) -> None:
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
    """Each user may spend this many tokens (input plus output) per UTC day."""

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

    async def reserve(
        self, session: AsyncSession, reply: AiReply, model: ModelInfo, prompt_tokens: int
    ) -> None:
        today = _start_of_today()
        needed = prompt_tokens + reply.max_tokens
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
