"""Telegram Stars: invoices for packages of credits, the pre-checkout answer, crediting a
payment exactly once, and refunds.

An invoice's payload carries its terms, signed with the app's secret key, so that a payment is
credited with what was offered, to whom it was offered, even when the package changed since.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from core.settings import StarPackage
from models import LedgerKind, PaymentStatus, StarPayment, User
from services.billing.config import BillingConfig
from services.billing.ledger import (
    Balance,
    apply_entry,
    format_credits,
    open_account,
    stage_balance_changed,
)

STARS_CURRENCY = "XTR"


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice for one user and package. Its payload carries the terms, signed, so that
    Telegram hands back exactly what we offered to whom we offered it."""

    package: StarPackage
    payload: str

    @property
    def description(self) -> str:
        return f"{format_credits(self.package.credits_micros)} credits for AI replies"


@dataclass(frozen=True, slots=True)
class InvoiceTerms:
    package_id: str
    user_id: int
    stars: int
    credits_micros: int


def _signature(config: BillingConfig, body: str) -> str:
    message = f"stars-invoice:{body}".encode()
    return hmac.new(config.secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def new_invoice(config: BillingConfig, package_id: str, user: User) -> Invoice:
    if not config.enabled:
        raise ServiceUnavailable("Payments are off on this server", code="billing_disabled")
    package = config.package(package_id)
    nonce = secrets.token_hex(4)  # two invoices for the same package differ
    body = f"{package.id}:{user.id}:{package.stars}:{package.credits_micros}:{nonce}"
    return Invoice(package, f"{body}:{_signature(config, body)}")


def _paid_terms(
    config: BillingConfig, user: User, payload: str, currency: str, total_amount: int
) -> InvoiceTerms:
    """The terms of an invoice we issued to this user, paid as issued (BadRequest, with a
    message for the payer, otherwise)."""
    body, _, signature = payload.rpartition(":")
    if not hmac.compare_digest(_signature(config, body).encode(), signature.encode()):
        raise BadRequest("This invoice was not issued by this bot", code="invoice_invalid")
    package_id, user_id, stars, credits, _nonce = body.split(":")
    terms = InvoiceTerms(package_id, int(user_id), int(stars), int(credits))
    if terms.user_id != user.id:
        raise BadRequest("This invoice was issued to someone else", code="invoice_wrong_user")
    if currency != STARS_CURRENCY or total_amount != terms.stars:
        raise BadRequest("The amount paid is not the invoice's", code="invoice_amount_mismatch")
    return terms


def check_pre_checkout(
    config: BillingConfig, user: User, payload: str, currency: str, total_amount: int
) -> None:
    """Whether Telegram may take the payment: our invoice, this user, the amount, and an offer
    that still stands."""
    terms = _paid_terms(config, user, payload, currency, total_amount)
    if not config.enabled:
        raise BadRequest("Payments are off on this server", code="billing_disabled")
    try:
        package = config.package(terms.package_id)
    except NotFound:
        raise BadRequest("This package is no longer offered", code="offer_changed") from None
    if (package.stars, package.credits_micros) != (terms.stars, terms.credits_micros):
        raise BadRequest("This offer has changed; please choose again", code="offer_changed")


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment: StarPayment
    credited: bool  # False: this charge was credited before (a redelivered update)
    balance: Balance


async def record_star_payment(
    session: AsyncSession,
    config: BillingConfig,
    user: User,
    *,
    payload: str,
    currency: str,
    total_amount: int,
    telegram_payment_charge_id: str,
    provider_payment_charge_id: str | None,
) -> PaymentResult:
    """Credit a successful payment, exactly once per Telegram charge id. The credits are those
    of the invoice that was paid, even when the package changed since."""
    terms = _paid_terms(config, user, payload, currency, total_amount)
    account = await open_account(session, config, user.id)
    known = await session.scalar(
        select(StarPayment).where(
            StarPayment.telegram_payment_charge_id == telegram_payment_charge_id
        )
    )
    if known is not None:
        return PaymentResult(known, credited=False, balance=Balance.of(account))
    payment = StarPayment(
        user_id=user.id,
        telegram_payment_charge_id=telegram_payment_charge_id,
        provider_payment_charge_id=provider_payment_charge_id or None,
        package=terms.package_id,
        stars=terms.stars,
        credits_micros=terms.credits_micros,
    )
    session.add(payment)
    await session.flush()
    await apply_entry(
        session,
        account,
        LedgerKind.DEPOSIT,
        terms.credits_micros,
        f"deposit:{payment.id}",
        reason=f"{terms.stars} Telegram Stars",
        payment_id=payment.id,
    )
    stage_balance_changed(session, account)
    return PaymentResult(payment, credited=True, balance=Balance.of(account))


# (Telegram user id, telegram_payment_charge_id): gives the Stars back, or raises.
StarRefund = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RefundResult:
    payment: StarPayment
    balance: Balance


async def refund_star_payment(
    session: AsyncSession,
    config: BillingConfig,
    telegram_payment_charge_id: str,
    refund: StarRefund,
) -> RefundResult:
    """Give a payment's Stars back and take its credits back, unless they are spent: the
    balance may not go below zero (Conflict, and Telegram is not asked). Telegram is asked last,
    so that its refusal rolls the refund entry back with the caller's transaction."""
    payment = await session.scalar(
        select(StarPayment).where(
            StarPayment.telegram_payment_charge_id == telegram_payment_charge_id
        )
    )
    if payment is None:
        raise NotFound("There is no payment with this charge id", code="payment_not_found")
    account = await open_account(session, config, payment.user_id)
    await session.refresh(payment)  # now that no other refund of it can run
    if payment.status == PaymentStatus.REFUNDED:
        raise Conflict("This payment was refunded already", code="already_refunded")
    available = account.balance - account.reserved
    if available < payment.credits_micros:
        raise Conflict(
            f"The user has spent some of the credits this payment bought: it added"
            f" {format_credits(payment.credits_micros)} credits and"
            f" {format_credits(available)} are left",
            code="refund_exceeds_balance",
            needed_micros=payment.credits_micros,
            available_micros=available,
        )
    await apply_entry(
        session,
        account,
        LedgerKind.REFUND,
        -payment.credits_micros,
        f"refund:{payment.id}",
        reason=f"{payment.stars} Telegram Stars refunded",
        payment_id=payment.id,
    )
    payment.status = PaymentStatus.REFUNDED
    payment.refunded_at = datetime.now(UTC)
    await session.flush()
    payer = await session.get_one(User, payment.user_id)
    await refund(payer.telegram_id, telegram_payment_charge_id)
    stage_balance_changed(session, account)
    return RefundResult(payment, Balance.of(account))
