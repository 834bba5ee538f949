"""Credits as clients see them: balances, ledger entries, prices, Star packages and payments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.settings import StarPackage
from models import LedgerEntry, StarPayment
from services.billing.ledger import Balance

MICROS = "micro-credits (1 credit = 1,000,000)"


class BalanceOut(BaseModel):
    balance: int = Field(description=MICROS)
    reserved: int = Field(description=f"held for AI replies being written, in {MICROS}")
    available: int = Field(description=f"what may be spent: balance - reserved, in {MICROS}")
    currency: str = "credits"

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        return cls(balance=balance.balance, reserved=balance.reserved, available=balance.available)


class TransactionOut(BaseModel):
    id: int
    kind: str = Field(description="grant, deposit, usage, refund or adjustment")
    amount: int = Field(description=f"signed, in {MICROS}")
    balance_after: int = Field(description=MICROS)
    reply_id: int | None
    payment_id: int | None
    reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> TransactionOut:
        return cls(
            id=entry.id,
            kind=entry.kind.value,
            amount=entry.amount,
            balance_after=entry.balance_after,
            reply_id=entry.reply_id,
            payment_id=entry.payment_id,
            reason=entry.reason,
            created_at=entry.created_at,
        )


class PackageOut(BaseModel):
    id: str
    title: str
    stars: int
    credits: int = Field(description=MICROS)

    @classmethod
    def of(cls, package: StarPackage) -> PackageOut:
        return cls(
            id=package.id, title=package.title, stars=package.stars, credits=package.credits_micros
        )


class ModelPriceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    display_name: str
    input_price: int = Field(description=f"per million input tokens, in {MICROS}")
    output_price: int = Field(description=f"per million output tokens, in {MICROS}")


class PaymentOut(BaseModel):
    id: int
    user_id: int
    telegram_payment_charge_id: str
    package: str
    stars: int
    credits: int = Field(description=MICROS)
    status: str
    created_at: datetime
    refunded_at: datetime | None

    @classmethod
    def of(cls, payment: StarPayment) -> PaymentOut:
        return cls(
            id=payment.id,
            user_id=payment.user_id,
            telegram_payment_charge_id=payment.telegram_payment_charge_id,
            package=payment.package,
            stars=payment.stars,
            credits=payment.credits_micros,
            status=payment.status.value,
            created_at=payment.created_at,
            refunded_at=payment.refunded_at,
        )
