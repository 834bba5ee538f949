"""`python -m bot`: run the Telegram bot on its own, polling (for when the API runs several
workers, or not at all). `python -m bot set-webhook` / `delete-webhook` manage webhook mode."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.app import TelegramBot
from bot.notifications import Notifier
from core.logging import setup_logging
from core.settings import Settings, get_settings, log_alias_uses
from wiring.process import Process
from workers.ai_runner import start_runner

logger = logging.getLogger("bot")


async def run_polling(settings: Settings) -> None:
    process = await Process.open(settings)
    telegram = TelegramBot(process)
    # This process runs only the replies asked for in Telegram; the API runs the app's.
    runner = start_runner(process, sink=telegram.relay, surfaces=frozenset({"telegram"}))
    telegram.attach(runner)
    # The bot notifies offline users of Mini App messages (the API processes, BOT_MODE=off,
    # make no Bot API calls by themselves); who is online is the API's shared presence.
    notifier = await Notifier.start(telegram.bot, process) if settings.notify_interval > 0 else None
    try:
        await telegram.start(polling=True)
        logger.info("polling Telegram for updates")
        await telegram.run_polling()
    finally:
        if notifier is not None:
            await notifier.close()
        await telegram.stop()
        if runner is not None:
            await runner.close()
        await process.close()


async def set_webhook(settings: Settings) -> None:
    if not settings.public_base_url or settings.webhook_secret is None:
        raise SystemExit("set-webhook needs PUBLIC_BASE_URL and WEBHOOK_SECRET")
    process = await Process.open(settings)
    telegram = TelegramBot(process)
    try:
        await telegram.bot.set_webhook(
            url=settings.public_base_url + settings.webhook_path,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=telegram.allowed_updates(),
        )
        logger.info("webhook set to %s%s", settings.public_base_url, settings.webhook_path)
    finally:
        await telegram.stop()
        await process.close()


async def delete_webhook(settings: Settings) -> None:
    process = await Process.open(settings)
    telegram = TelegramBot(process)
    try:
        await telegram.bot.delete_webhook()
        logger.info("webhook deleted")
    finally:
        await telegram.stop()
        await process.close()


COMMANDS = {"run": run_polling, "set-webhook": set_webhook, "delete-webhook": delete_webhook}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level, json_lines=settings.environment == "production")
    log_alias_uses()
    if settings.bot_token is None:
        logger.info("The bot is not configured (BOT_TOKEN is not set); nothing to run.")
        return 0
    asyncio.run(COMMANDS[args.command](settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
