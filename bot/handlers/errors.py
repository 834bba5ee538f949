"""The one place a refusal reaches the user. A handler does not catch `AppError`: it propagates
through the unit of work (which rolls back, dropping the events it staged) to aiogram's `errors`
observer, and here. In a private chat the user is told; in a group a command to the bot is
answered, and any other message (history the group did not ask the bot about) is only logged."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.enums import MessageEntityType
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, Message

from core.errors import AppError

logger = logging.getLogger(__name__)


def _is_command(message: Message) -> bool:
    return any(
        entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0
        for entity in message.entities or ()
    )


async def refused(event: ErrorEvent) -> None:
    error = event.exception
    if not isinstance(error, AppError):  # the filter below lets only these through
        raise error
    update = event.update
    if update.callback_query is not None:
        await update.callback_query.answer(error.message, show_alert=True)
        return
    if update.pre_checkout_query is not None:
        await update.pre_checkout_query.answer(ok=False, error_message=error.message)
        return
    message = update.message
    if message is not None and message.successful_payment is not None:
        await _not_credited(message, message.successful_payment.telegram_payment_charge_id, error)
    elif message is None:
        logger.info("a %s update was refused: %s", update.event_type, error.code)
    elif message.chat.type == "private":
        await message.answer(f"⚠️ {error.message}")
    elif _is_command(message):
        await message.reply(error.message)
    else:
        logger.info("a group message was refused: %s", error.code)


async def _not_credited(message: Message, charge_id: str, error: AppError) -> None:
    """Telegram took the Stars after our pre-checkout said yes: an operator must look."""
    payer = message.from_user.id if message.from_user is not None else None
    logger.error("payment %s of Telegram user %s not credited: %s", charge_id, payer, error.message)
    await message.answer(
        f"⚠️ This payment could not be credited. Please contact support with its id: {charge_id}"
    )


def create_router() -> Router:
    """A fresh router per Dispatcher (an aiogram router attaches to one only)."""
    router = Router(name="errors")
    router.errors.register(refused, ExceptionTypeFilter(AppError))
    return router
