"""Developer commands: `python -m core.devtools sign-init-data --user-id 1001 --first-name Alice`.

The initData printed is signed with BOT_TOKEN, or with the development token kept under data/,
so a local client authenticates through the real check.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Sequence

from core.settings import development_bot_token, get_settings
from core.telegram_auth import make_user_field, sign_init_data


def _configured_bot_token() -> str:
    settings = get_settings()
    if settings.bot_token is not None and settings.bot_token.get_secret_value():
        return settings.bot_token.get_secret_value()
    return development_bot_token()


def demo_init_data(
    bot_token: str,
    telegram_id: int,
    first_name: str,
    *,
    username: str | None = None,
    last_name: str | None = None,
    language_code: str | None = "en",
    start_param: str | None = None,
) -> str:
    """initData as Telegram would hand it to the Mini App of this user, signed now."""
    fields = {
        "query_id": secrets.token_urlsafe(16),
        "user": make_user_field(
            telegram_id,
            first_name,
            username=username,
            last_name=last_name,
            language_code=language_code,
        ),
        "auth_date": str(int(time.time())),
    }
    if start_param is not None:
        fields["start_param"] = start_param
    return sign_init_data(fields, bot_token)


def _sign_init_data(args: argparse.Namespace) -> str:
    return demo_init_data(
        _configured_bot_token(),
        args.user_id,
        args.first_name,
        username=args.username,
        last_name=args.last_name,
        language_code=args.language_code,
        start_param=args.start_param,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.devtools")
    commands = parser.add_subparsers(dest="command", required=True)
    sign = commands.add_parser(
        "sign-init-data", help="print initData for a user, signed with the configured bot token"
    )
    sign.add_argument("--user-id", type=int, required=True)
    sign.add_argument("--first-name", required=True)
    sign.add_argument("--username")
    sign.add_argument("--last-name")
    sign.add_argument("--language-code", default="en")
    sign.add_argument("--start-param")
    sign.set_defaults(run=_sign_init_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.stdout.write(args.run(args) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
