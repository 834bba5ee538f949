"""The ledger: every user's balance in micro-credits, and the entries that explain it.

Every change to a balance is a ledger entry with a unique idempotency key, written while the
user's account row is locked (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every transaction
begins IMMEDIATE, so writers queue). The stored balance therefore always equals the sum of the
user's entries, and a change made twice (a redelivered payment, a reply settled again) changes
nothing the second time.

A reply reserves its worst-case cost before it starts: the account's `reserved` grows by it and
a hold remembers it (see services.billing.quota). What a user may spend is
`balance - reserved`, so concurrent replies can never together take the balance below zero.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.bounds import fits_int64
from core.db import upsert_insert
from core.envelope import encode_envelope, encode_frame
from core.errors import BadRequest, Conflict, Unprocessable
from core.outbox import stage
from models import BillingAccount, LedgerEntry, LedgerKind, User
from services import frames
from services.billing.config import BillingConfig

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
class Balance:
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved

    @classmethod
    def of(cls, account: BillingAccount) -> Balance:
        return cls(account.balance, account.reserved)


def _locked(user_id: int) -> Select[BillingAccount]:
    return (
        select(BillingAccount)
        .where(BillingAccount.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def open_account(
    session: AsyncSession, config: BillingConfig, user_id: int
) -> BillingAccount:
    """The user's account, locked until the transaction ends. Created on first use with the
    starting grant (by exactly one of concurrent first uses), and topped up with the day's free
    credits when a daily allowance is configured."""
    account = await session.scalar(_locked(user_id))
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
        account = (await session.scalars(_locked(user_id))).one()
    if config.daily_free:
        key = f"grant:daily:{user_id}:{datetime.now(UTC).date().isoformat()}"
        if await find_entry(session, key) is None:
            await apply_entry(
                session, account, LedgerKind.GRANT, config.daily_free, key, reason="daily free"
            )
    return account


async def find_entry(session: AsyncSession, key: str) -> LedgerEntry | None:
    return await session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))


async def apply_entry(
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


def stage_balance_changed(session: AsyncSession, account: BillingAccount) -> None:
    """The user's sockets hear of it once the transaction has committed."""
    frame = frames.balance_changed(account.balance, available=account.balance - account.reserved)
    stage(session, encode_envelope([account.user_id], encode_frame(frame)))


async def get_balance(session: AsyncSession, config: BillingConfig, user_id: int) -> Balance:
    return Balance.of(await open_account(session, config, user_id))


async def grant_credits(
    session: AsyncSession, config: BillingConfig, user: User, amount: int, *, reason: str
) -> LedgerEntry:
    """An operator's grant (a positive amount) or adjustment (a negative one, which may not take
    the balance below what replies being written hold)."""
    if amount == 0:
        raise BadRequest("The amount may not be zero", code="invalid_amount")
    if not reason.strip():
        raise BadRequest("Say why: a reason is required", code="reason_required")
    account = await open_account(session, config, user.id)
    kind = LedgerKind.GRANT if amount > 0 else LedgerKind.ADJUSTMENT
    entry = await apply_entry(
        session, account, kind, amount, f"admin:{uuid.uuid4().hex}", reason=reason.strip()
    )
    stage_balance_changed(session, account)
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
    await open_account(session, config, user_id)  # a new user sees their starting grant
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
