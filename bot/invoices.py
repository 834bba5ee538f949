"""Telegram Stars through the Bot API: invoice links for packages of credits, and refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import LabeledPrice

from core.errors import Conflict, ServiceUnavailable
from core.settings import Settings
from services.billing.stars import STARS_CURRENCY, Invoice, StarRefund


@asynccontextmanager
async def bot_api(settings: Settings, running: Bot | None = None) -> AsyncIterator[Bot]:
    """The Bot API: the bot this process runs, else a client for the length of the block."""
    if running is not None:
        yield running
        return
    if settings.bot_token is None:
        raise ServiceUnavailable(
            "Payments need the Telegram bot, and BOT_TOKEN is not set", code="bot_not_configured"
        )
    bot = Bot(
        settings.bot_token.get_secret_value(),
        session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
    )
    try:
        yield bot
    finally:
        await bot.session.close()


async def create_invoice_link(bot: Bot, invoice: Invoice) -> str:
    """A t.me link that opens Telegram's payment form for the invoice (the Mini App opens it
    with Telegram.WebApp.openInvoice)."""
    package = invoice.package
    try:
        return await bot.create_invoice_link(
            title=package.title,
            description=invoice.description,
            payload=invoice.payload,
            currency=STARS_CURRENCY,
            prices=[LabeledPrice(label=package.title, amount=package.stars)],
        )
    except TelegramAPIError as error:
        raise ServiceUnavailable(
            f"Telegram did not create the invoice: {error.message}", code="telegram_unavailable"
        ) from None


def star_refund(bot: Bot) -> StarRefund:
    async def refund(telegram_user_id: int, telegram_payment_charge_id: str) -> None:
        try:
            await bot.refund_star_payment(
                user_id=telegram_user_id, telegram_payment_charge_id=telegram_payment_charge_id
            )
        except TelegramBadRequest as error:
            raise Conflict(
                f"Telegram refused the refund: {error.message}", code="refund_refused"
            ) from None
        except TelegramAPIError as error:
            raise ServiceUnavailable(
                f"Telegram did not answer the refund: {error.message}", code="telegram_unavailable"
            ) from None

    return refund
