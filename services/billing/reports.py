"""Reports for operators: what AI replies were used, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AiReply, AiReplyStatus, User


@dataclass(frozen=True, slots=True)
class UsageReportRow:
    user_id: int | None
    telegram_id: int | None
    username: str | None
    model: str
    replies: int
    input_tokens: int
    output_tokens: int
    cost_micros: int


async def usage_report(session: AsyncSession, first: date, last: date) -> list[UsageReportRow]:
    """AI replies that produced output, asked for from `first` to `last` (UTC days, both
    included), per paying user and model."""
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    rows = await session.execute(
        select(
            AiReply.requested_by,
            User.telegram_id,
            User.username,
            AiReply.model,
            func.count(),
            func.sum(AiReply.input_tokens),
            func.sum(AiReply.output_tokens),
            func.sum(AiReply.cost_micros),
        )
        .outerjoin(User, User.id == AiReply.requested_by)
        .where(
            AiReply.created_at >= start,
            AiReply.created_at < end,
            AiReply.status.in_((AiReplyStatus.DONE, AiReplyStatus.CANCELLED)),
        )
        .group_by(AiReply.requested_by, User.telegram_id, User.username, AiReply.model)
        .order_by(AiReply.requested_by, AiReply.model)
    )
    return [
        UsageReportRow(user_id, telegram_id, username, model, int(n), int(i), int(o), int(c))
        for user_id, telegram_id, username, model, n, i, o, c in rows
    ]
