"""Operator commands for billing and bans:

    python -m cli.admin grant --telegram-id 123456 --amount 1.5 --reason "support ticket 42"
    python -m cli.admin usage --from 2026-01-01 --to 2026-01-31
    python -m cli.admin ban --telegram-id 123456
    python -m cli.admin unban --telegram-id 123456

`grant` adds credits to a user's balance; a negative amount takes credits away (an adjustment),
never below what the balance holds. With REDIS_URL the user's open Mini Apps hear of it.
`usage` only reads: the AI replies per paying user and model over UTC days, tab-separated.
`ban` ends every session of the user and refuses their sign-in until `unban`; with REDIS_URL
their open sockets on every API process close at once (without it, in a single process, use
`POST /api/v1/admin/users/{id}/ban`, which closes them too).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from core.db import read_session, unit_of_work
from core.errors import AppError
from core.settings import get_settings
from services import auth, users
from services.billing import ledger
from services.billing.ledger import credits_to_micros, format_credits
from services.billing.reports import usage_report
from wiring.process import Process

Command = Callable[[Process, argparse.Namespace], Coroutine[None, None, str]]


async def _grant(process: Process, args: argparse.Namespace) -> str:
    async with unit_of_work(process.sessionmaker, process.broker) as session:
        user = await users.user_by_telegram_id(session, args.telegram_id)
        entry = await ledger.grant_credits(
            session,
            process.billing,
            user,
            args.amount,
            reason=args.reason,
        )
    return (
        f"{entry.kind.value} of {format_credits(entry.amount)} credits to Telegram user"
        f" {args.telegram_id}; balance: {format_credits(entry.balance_after)} credits\n"
    )


async def _ban(process: Process, args: argparse.Namespace) -> str:
    async with unit_of_work(process.sessionmaker, process.broker) as session:
        user = await users.user_by_telegram_id(session, args.telegram_id)
        await auth.ban_user(session, user)
    return f"Telegram user {args.telegram_id} is banned: every session ended\n"


async def _unban(process: Process, args: argparse.Namespace) -> str:
    async with unit_of_work(process.sessionmaker, process.broker) as session:
        user = await users.user_by_telegram_id(session, args.telegram_id)
        await auth.unban_user(session, user)
    return f"Telegram user {args.telegram_id} may sign in again\n"


USAGE_COLUMNS = (
    "telegram_id",
    "username",
    "model",
    "replies",
    "input_tokens",
    "output_tokens",
    "cost_credits",
)


async def _usage(process: Process, args: argparse.Namespace) -> str:
    async with read_session(process.sessionmaker) as session:
        rows = await usage_report(session, args.first, args.last)
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
    parser = argparse.ArgumentParser(prog="python -m cli.admin", description=__doc__)
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
    ban = commands.add_parser("ban", help="end every session of a user and refuse sign-in")
    ban.add_argument("--telegram-id", type=int, required=True)
    ban.set_defaults(run=_ban)
    unban = commands.add_parser("unban", help="let a banned user sign in again")
    unban.add_argument("--telegram-id", type=int, required=True)
    unban.set_defaults(run=_unban)
    return parser


async def _run(command: Command, args: argparse.Namespace) -> str:
    """Events the command's unit of work publishes reach the API processes (through Redis,
    when set)."""
    process = await Process.open(get_settings())
    try:
        return await command(process, args)
    finally:
        await process.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "usage" and args.last < args.first:
        parser.error("--to is before --from")
    try:
        sys.stdout.write(asyncio.run(_run(args.run, args)))
    except AppError as error:
        sys.stderr.write(f"error: {error.message}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
