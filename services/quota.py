"""What an AI reply may cost, before it starts and after it ends.

The AI participant calls `reserve` before a reply starts and exactly one of `settle` (it produced
something: charge what it used) or `release` (it failed: charge nothing) after it ends. The
billing ledger implements the same interface; until a deployment turns billing on, a daily token
allowance per user applies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PaymentRequired
from llm.catalogue import ModelInfo
from models import AiReply, AiReplyStatus


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


class DailyTokenAllowance(QuotaPolicy):
    """Each user may spend this many tokens (input plus output) per UTC day."""

    def __init__(self, tokens_per_day: int) -> None:
        self.tokens_per_day = tokens_per_day

    async def reserve(
        self, session: AsyncSession, reply: AiReply, model: ModelInfo, prompt_tokens: int
    ) -> None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        used = await session.scalar(
            select(func.coalesce(func.sum(AiReply.input_tokens + AiReply.output_tokens), 0)).where(
                AiReply.requested_by == reply.requested_by,
                AiReply.created_at >= today,
                AiReply.status.in_((AiReplyStatus.DONE, AiReplyStatus.CANCELLED)),
            )
        )
        needed = prompt_tokens + reply.max_tokens
        if int(used or 0) + needed > self.tokens_per_day:
            raise PaymentRequired(
                "Today's AI allowance is used up",
                code="daily_allowance_exhausted",
                resets_at=(today + timedelta(days=1)).isoformat(),
            )

    async def settle(self, session: AsyncSession, reply: AiReply) -> None:
        """Usage is recorded on the reply itself; nothing more to write."""

    async def release(self, session: AsyncSession, reply: AiReply) -> None:
        """A failed reply records no usage."""
