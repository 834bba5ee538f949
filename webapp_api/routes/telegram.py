"""Telegram's webhook: updates for the bot, when the API process runs it in webhook mode."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header

from core.errors import NotFound, Unauthorized
from webapp_api.deps import Context

router = APIRouter(tags=["telegram"])


async def telegram_webhook(
    context: Context,
    update: Annotated[dict[str, Any], Body()],
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> dict[str, bool]:
    """Checks Telegram's secret token (constant time) and hands the update to the bot."""
    expected = context.settings.webhook_secret
    if context.telegram is None or context.bot_mode != "webhook" or expected is None:
        raise NotFound("Not Found")
    if secret is None or not hmac.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        raise Unauthorized("Bad webhook secret", code="bad_webhook_secret")
    await context.telegram.feed(update)
    return {"ok": True}
