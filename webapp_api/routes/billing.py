"""Billing: my balance and its ledger, prices, Telegram Stars invoices, refunds (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.access import require_admin
from services.billing import ledger, stars
from services.views.billing import BalanceOut, ModelPriceOut, PackageOut, PaymentOut, TransactionOut
from webapp_api.deps import Context, CurrentUser, Session
from webapp_api.schemas.billing import (
    InvoiceOut,
    InvoiceRequest,
    PricesOut,
    RefundOut,
    RefundRequest,
    TransactionPage,
)
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1/billing", tags=["billing"], responses=errors(401))


@router.get("/balance", response_model=BalanceOut)
async def get_balance(user: CurrentUser, session: Session, context: Context) -> BalanceOut:
    """My balance, what replies being written hold of it, and what I may spend."""
    return BalanceOut.of(await ledger.get_balance(session, context.billing, user.id))


@router.get("/transactions", response_model=TransactionPage, responses=errors(422))
async def list_transactions(
    user: CurrentUser,
    session: Session,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=ledger.TRANSACTIONS_MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> TransactionPage:
    """Every change to my balance, newest first."""
    page = await ledger.list_entries(session, context.billing, user.id, limit=limit, cursor=cursor)
    return TransactionPage(
        items=[TransactionOut.of(entry) for entry in page.items], next_cursor=page.next_cursor
    )


@router.get("/prices", response_model=PricesOut)
async def get_prices(_user: CurrentUser, context: Context) -> PricesOut:
    """What AI replies cost per model, and the packages of credits sold for Telegram Stars."""
    config = context.billing
    models = context.ai.catalogue.usable() if context.ai is not None else []
    return PricesOut(
        billing_enabled=config.enabled,
        models=[ModelPriceOut.model_validate(model) for model in models],
        packages=[PackageOut.of(package) for package in config.packages],
        starting_grant=config.starting_grant,
        daily_free=config.daily_free,
    )


@router.post("/invoice", response_model=InvoiceOut, responses=errors(400, 404, 422, 503))
async def create_invoice(body: InvoiceRequest, user: CurrentUser, context: Context) -> InvoiceOut:
    """An invoice link (Telegram Stars) for a package, for the Mini App to open."""
    # aiogram is imported by a process when it first talks to Telegram (seconds of start-up).
    from bot.invoices import bot_api, create_invoice_link

    invoice = stars.new_invoice(context.billing, body.package, user)
    running = context.telegram.bot if context.telegram is not None else None
    async with bot_api(context.settings, running) as bot:
        link = await create_invoice_link(bot, invoice)
    return InvoiceOut(invoice_link=link, package=PackageOut.of(invoice.package))


@router.post(
    "/admin/refund", response_model=RefundOut, responses=errors(400, 403, 404, 409, 422, 503)
)
async def refund_payment(
    body: RefundRequest, user: CurrentUser, session: Session, context: Context
) -> RefundOut:
    """Administrators: give a payment's Stars back and take its credits back. Refused (409)
    when the payer has spent them."""
    require_admin(user)
    from bot.invoices import bot_api, star_refund

    running = context.telegram.bot if context.telegram is not None else None
    async with bot_api(context.settings, running) as bot:
        result = await stars.refund_star_payment(
            session, context.billing, body.telegram_payment_charge_id, star_refund(bot)
        )
    return RefundOut(payment=PaymentOut.of(result.payment), balance=BalanceOut.of(result.balance))
