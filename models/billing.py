"""Billing: each user's balance, the ledger of every change to it, open reservations, and
payments in Telegram Stars. Amounts are integers in micro-credits (1 credit = 1,000,000)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, TimestampMixin, str_enum, utcnow


class LedgerKind(enum.StrEnum):
    GRANT = "grant"  # free credits: the starting grant, a daily allowance, an operator's gift
    DEPOSIT = "deposit"  # bought with Telegram Stars
    USAGE = "usage"  # an AI reply
    REFUND = "refund"  # a Stars payment given back
    ADJUSTMENT = "adjustment"  # an operator's correction (taking credits away)


class PaymentStatus(enum.StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"


class BillingAccount(TimestampMixin, Base):
    """A user's balance, and the part of it held for replies being written. `balance` always
    equals the sum of the user's ledger entries; the constraints keep it from going negative
    whatever a bug elsewhere would try."""

    __tablename__ = "billing_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= balance", name="reserved_within_balance"),
    )

    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(default=0, server_default="0")
    reserved: Mapped[int] = mapped_column(default=0, server_default="0")


class BillingHold(Base):
    """The worst-case cost of a reply, held from its payer's balance until the reply ends.

    No cascade from the reply: a hold must be settled or released, never dropped silently."""

    __tablename__ = "billing_holds"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    reply_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("ai_replies.id"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )


class StarPayment(Base):
    """A successful payment in Telegram Stars; Telegram's charge id makes it count once."""

    __tablename__ = "star_payments"

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    telegram_payment_charge_id: Mapped[str] = mapped_column(String(256), unique=True)
    provider_payment_charge_id: Mapped[str | None] = mapped_column(String(256))
    package: Mapped[str] = mapped_column(String(32))
    stars: Mapped[int]
    credits_micros: Mapped[int]
    status: Mapped[PaymentStatus] = mapped_column(
        str_enum(PaymentStatus, "star_payment_status"), default=PaymentStatus.PAID
    )
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    refunded_at: Mapped[datetime | None]


class LedgerEntry(Base):
    """One change to a balance. The idempotency key makes a retried change a no-op."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index("ix_ledger_entries_user_id_id", "user_id", "id"),
    )

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[LedgerKind] = mapped_column(str_enum(LedgerKind, "ledger_kind"))
    amount: Mapped[int]  # signed: what the entry added to the balance
    balance_after: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    reply_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("ai_replies.id", ondelete="SET NULL")
    )
    payment_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("star_payments.id", ondelete="SET NULL")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
