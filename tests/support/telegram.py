"""Real, signed Telegram initData for test users."""

from __future__ import annotations

import time

from core.telegram_auth import make_user_field, sign_init_data

TEST_BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def init_data_for(
    telegram_id: int,
    first_name: str = "Test",
    *,
    username: str | None = None,
    token: str = TEST_BOT_TOKEN,
    auth_date: int | None = None,
    **user_fields: object,
) -> str:
    fields = {
        "query_id": f"AAH{telegram_id}",
        "user": make_user_field(telegram_id, first_name, username=username, **user_fields),  # type: ignore[arg-type]
        "auth_date": str(auth_date if auth_date is not None else int(time.time())),
    }
    return sign_init_data(fields, token)


def auth_headers(telegram_id: int, first_name: str = "Test", **kwargs: object) -> dict[str, str]:
    return {"X-Telegram-Init-Data": init_data_for(telegram_id, first_name, **kwargs)}  # type: ignore[arg-type]
