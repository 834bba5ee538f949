from __future__ import annotations

from pydantic import BaseModel, Field

from core.bounds import Input
from services.views.billing import (
    MICROS,
    BalanceOut,
    ModelPriceOut,
    PackageOut,
    PaymentOut,
    TransactionOut,
)


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None = Field(description="pass as `cursor` for older entries")


class PricesOut(BaseModel):
    billing_enabled: bool
    models: list[ModelPriceOut]
    packages: list[PackageOut]
    starting_grant: int = Field(description=MICROS)
    daily_free: int = Field(description=MICROS)


class InvoiceRequest(Input):
    package: str = Field(min_length=1, max_length=32)


class InvoiceOut(BaseModel):
    invoice_link: str = Field(description="open with Telegram.WebApp.openInvoice")
    package: PackageOut


class RefundRequest(Input):
    telegram_payment_charge_id: str = Field(min_length=1, max_length=256)


class RefundOut(BaseModel):
    payment: PaymentOut
    balance: BalanceOut = Field(description="the payer's balance after the refund")
