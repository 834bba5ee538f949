"""`python -m bot`: run the Telegram bot (polling). Exits cleanly when no token is configured."""

from __future__ import annotations

import logging
import sys

from core.logging import setup_logging
from core.settings import get_settings

logger = logging.getLogger("bot")


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_level, json_lines=settings.environment == "production")
    if settings.bot_token is None:
        logger.info("The bot is not configured (BOT_TOKEN is not set); nothing to run.")
        return 0
    logger.error("Polling is not available in this version yet.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
