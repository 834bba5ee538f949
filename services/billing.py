"""Billing: every user's balance in micro-credits, and the ledger that explains it.

Every change to a balance is a ledger entry with a unique idempotency key, written while the
user's account row is locked (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every transaction
begins IMMEDIATE, so writers queue). The stored balance therefore always equals the sum of the
user's entries, and a change made twice (a redelivered payment, a reply settled again) changes
nothing the second time.

A reply reserves its worst-case cost before it starts: the account's `reserved` grows by it and
a hold remembers it. What a user may spend is `balance - reserved`, so concurrent replies can
never together take the balance below zero. When the reply ends its hold goes: what it actually
cost is charged (a usage entry) and the rest is free again; a failed reply is charged nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.bounds import fits_int64
from core.db import upsert_insert
from core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    Unprocessable,
)
from core.outbox import encode_envelope, encode_frame, stage
from core.settings import Settings, StarPackage
from llm.catalogue import ModelInfo, cost_micros
from models import (
    AiReply,
    AiReplyStatus,
    BillingAccount,
    BillingHold,
    LedgerEntry,
    LedgerKind,
    PaymentStatus,
    StarPayment,
    User,
)
from services.quota import QuotaPolicy

logger = logging.getLogger(__name__)

MICROS_PER_CREDIT = 1_000_000
STARS_CURRENCY = "XTR"
TRANSACTIONS_MAX_LIMIT = 100


def format_credits(micros: int) -> str:
    """Micro-credits as credits, exactly: 1500000 -> "1.5", 1 -> "0.000001"."""
    text = f"{Decimal(micros).scaleb(-6):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def credits_to_micros(amount: Decimal) -> int:
    """Credits (up to six decimal places) as micro-credits, exactly."""
    micros = amount.scaleb(6)
    if not micros.is_finite() or micros != micros.to_integral_value():
        raise BadRequest(
            "An amount of credits has at most six decimal places", code="invalid_amount"
        )
    return int(micros)


@dataclass(frozen=True, slots=True)
class BillingConfig:
    enabled: bool
    starting_grant: int
    daily_free: int
    packages: tuple[StarPackage, ...]
    secret_key: str = field(repr=False)  # signs invoice payloads

    @classmethod
    def from_settings(cls, settings: Settings) -> BillingConfig:
        return cls(
            enabled=settings.billing_enabled,
            starting_grant=settings.billing_starting_grant_micros,
            daily_free=settings.billing_daily_free_micros,
            packages=settings.billing_packages,
            secret_key=settings.secret_key_value(),
        )

    def package(self, package_id: str) -> StarPackage:
        for package in self.packages:
            if package.id == package_id:
                return package
        raise NotFound("There is no such package of credits", code="unknown_package")


@dataclass(frozen=True, slots=True)
class Balance:
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved


def _balance_of(account: BillingAccount) -> Balance:
    return Balance(account.balance, account.reserved)


# -- the ledger -----------------------------------------------------------------------------------


async def _locked(session: AsyncSession, user_id: int) -> BillingAccount | None:
    return await session.scalar(
        select(BillingAccount)
        .where(BillingAccount.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _account(session: AsyncSession, config: BillingConfig, user_id: int) -> BillingAccount:
    """The user's account, locked until the transaction ends. Created on first use with the
    starting grant (by exactly one of concurrent first uses), and topped up with the day's free
    credits when a daily allowance is configured."""
    account = await _locked(session, user_id)
    if account is None:
        created = await session.scalar(
            upsert_insert(session, BillingAccount)
            .values(user_id=user_id, balance=config.starting_grant, reserved=0)
            .on_conflict_do_nothing(index_elements=["user_id"])
            .returning(BillingAccount.user_id)
        )
        if created is not None and config.starting_grant:
            session.add(
                LedgerEntry(
                    user_id=user_id,
                    kind=LedgerKind.GRANT,
                    amount=config.starting_grant,
                    balance_after=config.starting_grant,
                    idempotency_key=f"grant:start:{user_id}",
                    reason="starting grant",
                )
            )
            await session.flush()
        account = await _locked(session, user_id)
        assert account is not None
    if config.daily_free:
        key = f"grant:daily:{user_id}:{datetime.now(UTC).date().isoformat()}"
        if await _entry(session, key) is None:
            await _apply(
                session, account, LedgerKind.GRANT, config.daily_free, key, reason="daily free"
            )
    return account


async def _entry(session: AsyncSession, key: str) -> LedgerEntry | None:
    return await session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))


async def _apply(
    session: AsyncSession,
    account: BillingAccount,
    kind: LedgerKind,
    amount: int,
    key: str,
    *,
    reason: str | None = None,
    reply_id: int | None = None,
    payment_id: int | None = None,
) -> LedgerEntry:
    """Change a locked account's balance by `amount`, with the entry that says why. Credits held
    for replies cannot be taken."""
    available = account.balance - account.reserved
    if available + amount < 0:
        raise Conflict(
            f"The balance does not cover this: {format_credits(available)} credits are available",
            code="insufficient_balance",
            needed_micros=-amount,
            available_micros=available,
        )
    account.balance += amount
    entry = LedgerEntry(
        user_id=account.user_id,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        idempotency_key=key,
        reason=reason,
        reply_id=reply_id,
        payment_id=payment_id,
    )
    session.add(entry)
    await session.flush()
    return entry


def _stage_balance_changed(session: AsyncSession, account: BillingAccount) -> None:
    """The user's sockets hear of it once the transaction has committed."""
    frame = {
        "type": "balance_changed",
        "balance": account.balance,
        "available": account.balance - account.reserved,
        "currency": "credits",
    }
    stage(session, encode_envelope([account.user_id], encode_frame(frame)))


async def get_balance(session: AsyncSession, config: BillingConfig, user_id: int) -> Balance:
    return _balance_of(await _account(session, config, user_id))


async def grant_credits(
    session: AsyncSession, config: BillingConfig, user: User, amount: int, *, reason: str
) -> LedgerEntry:
    """An operator's grant (a positive amount) or adjustment (a negative one, which may not take
    the balance below what replies being written hold)."""
    if amount == 0:
        raise BadRequest("The amount may not be zero", code="invalid_amount")
    if not reason.strip():
        raise BadRequest("Say why: a reason is required", code="reason_required")
    account = await _account(session, config, user.id)
    kind = LedgerKind.GRANT if amount > 0 else LedgerKind.ADJUSTMENT
    entry = await _apply(
        session, account, kind, amount, f"admin:{uuid.uuid4().hex}", reason=reason.strip()
    )
    _stage_balance_changed(session, account)
    return entry


@dataclass(frozen=True, slots=True)
class EntryPage:
    items: list[LedgerEntry]
    next_cursor: str | None


async def list_entries(
    session: AsyncSession,
    config: BillingConfig,
    user_id: int,
    *,
    limit: int,
    cursor: str | None = None,
) -> EntryPage:
    """The user's ledger, newest first; `next_cursor` continues with older entries."""
    await _account(session, config, user_id)  # a new user sees their starting grant
    statement = (
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user_id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit() and fits_int64(int(cursor))):
            raise Unprocessable("cursor is not valid", code="bad_cursor")
        statement = statement.where(LedgerEntry.id < int(cursor))
    rows = list(await session.scalars(statement))
    items = rows[:limit]
    return EntryPage(items, str(items[-1].id) if len(rows) > limit else None)


# -- paying for AI replies ------------------------------------------------------------------------


async def _take_hold(session: AsyncSession, reply_id: int) -> int:
    held = await session.scalar(
        delete(BillingHold).where(BillingHold.reply_id == reply_id).returning(BillingHold.amount)
    )
    return int(held or 0)


class LedgerQuota(QuotaPolicy):
    """Replies are paid from the balance of the user who asked for them."""

    def __init__(self, config: BillingConfig) -> None:
        self.config = config

    async def reserve(
        self, session: AsyncSession, reply: AiReply, model: ModelInfo, prompt_tokens: int
    ) -> None:
        assert reply.requested_by is not None  # a new reply always has its payer
        needed = cost_micros(model, prompt_tokens, reply.max_tokens)
        account = await _account(session, self.config, reply.requested_by)
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
        _stage_balance_changed(session, account)

    async def _payer(self, session: AsyncSession, reply: AiReply) -> BillingAccount | None:
        hold = await session.get(BillingHold, reply.id)
        payer = hold.user_id if hold is not None else reply.requested_by
        return await _account(session, self.config, payer) if payer is not None else None

    async def settle(self, session: AsyncSession, reply: AiReply) -> None:
        account = await self._payer(session, reply)
        key = f"usage:{reply.id}"
        if account is None or await _entry(session, key) is not None:
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
            await _apply(
                session, account, LedgerKind.USAGE, -charge, key, reason=reason, reply_id=reply.id
            )
        else:
            await session.flush()
        _stage_balance_changed(session, account)

    async def release(self, session: AsyncSession, reply: AiReply) -> None:
        if await session.get(BillingHold, reply.id) is None:
            return
        account = await self._payer(session, reply)
        assert account is not None
        account.reserved -= await _take_hold(session, reply.id)
        await session.flush()
        _stage_balance_changed(session, account)

    async def describe(self, session: AsyncSession, user: User) -> str:
        account = await _account(session, self.config, user.id)
        text = f"Your balance: {format_credits(account.balance)} credits."
        if account.reserved:
            text += f" {format_credits(account.reserved)} of them are held for replies in progress."
        return text + " Top up with /topup."


# -- Telegram Stars -------------------------------------------------------------------------------


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
    account = await _account(session, config, user.id)
    known = await session.scalar(
        select(StarPayment).where(
            StarPayment.telegram_payment_charge_id == telegram_payment_charge_id
        )
    )
    if known is not None:
        return PaymentResult(known, credited=False, balance=_balance_of(account))
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
    await _apply(
        session,
        account,
        LedgerKind.DEPOSIT,
        terms.credits_micros,
        f"deposit:{payment.id}",
        reason=f"{terms.stars} Telegram Stars",
        payment_id=payment.id,
    )
    _stage_balance_changed(session, account)
    return PaymentResult(payment, credited=True, balance=_balance_of(account))


# (Telegram user id, telegram_payment_charge_id): gives the Stars back, or raises.
StarRefund = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RefundResult:
    payment: StarPayment
    balance: Balance


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("Only administrators may do this", code="admin_only")


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
    account = await _account(session, config, payment.user_id)
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
    await _apply(
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
    payer = await session.get(User, payment.user_id)
    assert payer is not None  # the payment would have gone with its user
    await refund(payer.telegram_id, telegram_payment_charge_id)
    _stage_balance_changed(session, account)
    return RefundResult(payment, _balance_of(account))


# -- reports --------------------------------------------------------------------------------------


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


async def user_by_telegram_id(session: AsyncSession, telegram_id: int) -> User:
    user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
    if user is None:
        raise NotFound(f"No user has Telegram id {telegram_id}", code="user_not_found")
    return user
