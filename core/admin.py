"""Operator commands for billing:

    python -m core.admin grant --telegram-id 123456 --amount 1.5 --reason "support ticket 42"
    python -m core.admin usage --from 2026-01-01 --to 2026-01-31

`grant` adds credits to a user's balance; a negative amount takes credits away (an adjustment),
never below what the balance holds. With REDIS_URL the user's open Mini Apps hear of it.
`usage` only reads: the AI replies per paying user and model over UTC days, tab-separated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from core.broker import create_broker
from core.db import create_engine, create_sessionmaker, session_scope
from core.errors import AppError
from core.settings import Settings, get_settings
from services import billing
from services.billing import BillingConfig, credits_to_micros, format_credits

Command = Callable[[Settings, argparse.Namespace], Coroutine[None, None, str]]


async def _grant(settings: Settings, args: argparse.Namespace) -> str:
    engine = create_engine(settings.database_url)
    broker = create_broker(settings.redis_url, settings.redis_prefix)
    await broker.start()
    try:
        async with session_scope(create_sessionmaker(engine), broker) as session:
            user = await billing.user_by_telegram_id(session, args.telegram_id)
            entry = await billing.grant_credits(
                session,
                BillingConfig.from_settings(settings),
                user,
                args.amount,
                reason=args.reason,
            )
    finally:
        await broker.close()
        await engine.dispose()
    return (
        f"{entry.kind.value} of {format_credits(entry.amount)} credits to Telegram user"
        f" {args.telegram_id}; balance: {format_credits(entry.balance_after)} credits\n"
    )


USAGE_COLUMNS = (
    "telegram_id",
    "username",
    "model",
    "replies",
    "input_tokens",
    "output_tokens",
    "cost_credits",
)


async def _usage(settings: Settings, args: argparse.Namespace) -> str:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await billing.usage_report(session, args.first, args.last)
    finally:
        await engine.dispose()
    lines = ["\t".join(USAGE_COLUMNS)]
    for row in rows:
        who = (str(row.telegram_id), row.username or "") if row.telegram_id else ("", "")
        counts = (row.replies, row.input_tokens, row.output_tokens)
        cost = format_credits(row.cost_micros)
        lines.append("\t".join((*who, row.model, *map(str, counts), cost)))
    total = (
        sum(row.replies for row in rows),
        sum(row.input_tokens for row in rows),
        sum(row.output_tokens for row in rows),
    )
    cost = format_credits(sum(row.cost_micros for row in rows))
    lines.append("\t".join(("total", "", "", *map(str, total), cost)))
    return "\n".join(lines) + "\n"


def _credits(value: str) -> int:
    try:
        return credits_to_micros(Decimal(value))
    except (InvalidOperation, AppError):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an amount of credits (at most six decimal places)"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    grant = commands.add_parser("grant", help="add (or, negative, take away) credits")
    grant.add_argument("--telegram-id", type=int, required=True)
    grant.add_argument("--amount", type=_credits, required=True, help="credits, e.g. 1.5")
    grant.add_argument("--reason", required=True)
    grant.set_defaults(run=_grant)
    usage = commands.add_parser("usage", help="AI usage per user and model (read-only)")
    usage.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    usage.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    usage.set_defaults(run=_usage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "usage" and args.last < args.first:
        parser.error("--to is before --from")
    run: Command = args.run
    try:
        sys.stdout.write(asyncio.run(run(get_settings(), args)))
    except AppError as error:
        sys.stderr.write(f"error: {error.message}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
