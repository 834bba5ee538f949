"""Buying credits with Telegram Stars: /topup, the pre-checkout check, the payment itself."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, PreCheckoutQuery
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import BotContext
from bot.invoices import create_invoice_link
from models import User
from services.billing import ledger, stars
from services.billing.ledger import format_credits


async def topup(
    message: Message, bot: Bot, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """The packages of credits, each a button that opens Telegram's payment form."""
    config = ctx.billing
    invoices = [stars.new_invoice(config, package.id, user) for package in config.packages]
    links = [await create_invoice_link(bot, invoice) for invoice in invoices]
    if not links:
        await message.answer("No packages of credits are offered at the moment.")
        return
    balance = await ledger.get_balance(session, config, user.id)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=f"{i.package.title} — {i.package.stars} ⭐", url=link)]
            for i, link in zip(invoices, links, strict=True)
        ]
    )
    await message.answer(
        f"Your balance: {format_credits(balance.balance)} credits. Buy more with Telegram Stars:",
        reply_markup=keyboard,
    )


async def pre_checkout(query: PreCheckoutQuery, ctx: BotContext, user: User) -> None:
    """Telegram asks before it takes the Stars: only our own invoice, paid by whom it was issued
    to, with the amount and the offer it was issued with."""
    config = ctx.billing
    stars.check_pre_checkout(
        config, user, query.invoice_payload, query.currency, query.total_amount
    )
    await query.answer(ok=True)


async def successful_payment(
    message: Message, ctx: BotContext, session: AsyncSession, user: User
) -> None:
    """Credits the payment once per charge; a redelivered update changes and says nothing."""
    paid = message.successful_payment
    if paid is None:  # the filter registered below lets only payments through
        return
    result = await stars.record_star_payment(
        session,
        ctx.billing,
        user,
        payload=paid.invoice_payload,
        currency=paid.currency,
        total_amount=paid.total_amount,
        telegram_payment_charge_id=paid.telegram_payment_charge_id,
        provider_payment_charge_id=paid.provider_payment_charge_id,
    )
    if result.credited:
        await message.answer(
            f"Thank you! Your balance is now {format_credits(result.balance.balance)} credits"
            f" (+{format_credits(result.payment.credits_micros)})."
        )


def create_router() -> Router:
    """A fresh router per Dispatcher (an aiogram router attaches to one only)."""
    router = Router(name="payments")
    router.message.register(topup, Command("topup"), F.chat.type == "private")
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    return router
