"""`python -m cli.admin`, run as an operator would: a process configured by its environment."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.admin import main
from core.broker import MemoryBroker
from core.db import unit_of_work
from core.settings import Settings
from models import AiReply, AiReplyStatus, Chat, ChatType, User
from tests.billing.conftest import STARTING_GRANT
from tests.billing.helpers import Sessionmaker, entries_of, ledger_state, new_user
from tests.conftest import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    out: str
    err: str


async def admin(database_url: str, cwd: Path, *args: str) -> Ran:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TEST_") and name.lower() not in Settings.model_fields
    }
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET_KEY,
            "BILLING_STARTING_GRANT_MICROS": str(STARTING_GRANT),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.admin",
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def test_grant_adds_credits_and_a_negative_amount_takes_them_away(
    billing_database_url: str, billing_sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    user = await new_user(billing_sessionmaker, 7401)

    granted = await admin(
        billing_database_url,
        tmp_path,
        *("grant", "--telegram-id", "7401", "--amount", "1.5", "--reason", "support ticket 42"),
    )
    assert granted == Ran(
        0, "grant of 1.5 credits to Telegram user 7401; balance: 1.6 credits\n", ""
    )
    taken = await admin(
        billing_database_url,
        tmp_path,
        *("grant", "--telegram-id", "7401", "--amount=-0.6", "--reason", "granted too much"),
    )
    assert taken.code == 0, taken.err
    assert taken.out == "adjustment of -0.6 credits to Telegram user 7401; balance: 1 credits\n"

    entries = await entries_of(billing_sessionmaker, user.id)
    assert [(e.kind.value, e.amount, e.reason) for e in entries] == [
        ("grant", STARTING_GRANT, "starting grant"),
        ("grant", 1_500_000, "support ticket 42"),
        ("adjustment", -600_000, "granted too much"),
    ]
    state = await ledger_state(billing_sessionmaker, user.id)
    assert state.balance == state.entries_sum == 1_000_000


async def test_grant_refuses_what_it_cannot_do(
    billing_database_url: str, billing_sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    user = await new_user(billing_sessionmaker, 7402)
    overdrawn = await admin(
        billing_database_url,
        tmp_path,
        *("grant", "--telegram-id", "7402", "--amount=-5", "--reason", "test"),
    )
    assert overdrawn.code == 1
    assert "does not cover" in overdrawn.err
    nobody = await admin(
        billing_database_url,
        tmp_path,
        *("grant", "--telegram-id", "1", "--amount", "1", "--reason", "test"),
    )
    assert nobody.code == 1
    assert "No user has Telegram id 1" in nobody.err
    assert await entries_of(billing_sessionmaker, user.id) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["grant", "--telegram-id", "1", "--amount", "0.0000001", "--reason", "x"],
            "at most six decimal places",
        ),
        (["grant", "--telegram-id", "1", "--amount", "lots", "--reason", "x"], "'lots'"),
        (["usage", "--from", "2026-02-01", "--to", "2026-01-01"], "--to is before --from"),
    ],
)
def test_arguments_are_checked_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


async def _replies(sessionmaker: Sessionmaker) -> tuple[User, User]:
    alice = await new_user(sessionmaker, 7411, "Alice", "alice")
    bob = await new_user(sessionmaker, 7412, "Bob")
    rows = [
        # (who, model, status, when, input, output, cost)
        (
            alice,
            "pricey",
            AiReplyStatus.DONE,
            datetime(2026, 1, 5, 12, tzinfo=UTC),
            100,
            50,
            20_000,
        ),
        (
            alice,
            "pricey",
            AiReplyStatus.CANCELLED,
            datetime(2026, 1, 31, 23, tzinfo=UTC),
            10,
            5,
            2_000,
        ),
        (
            alice,
            "gpt-4o-mini",
            AiReplyStatus.DONE,
            datetime(2026, 1, 10, tzinfo=UTC),
            1000,
            100,
            210,
        ),
        (bob, "pricey", AiReplyStatus.DONE, datetime(2026, 1, 15, tzinfo=UTC), 20, 10, 4_000),
        (alice, "pricey", AiReplyStatus.FAILED, datetime(2026, 1, 6, tzinfo=UTC), 0, 0, 0),
        (alice, "pricey", AiReplyStatus.DONE, datetime(2026, 2, 1, tzinfo=UTC), 1, 1, 300),
        (bob, "pricey", AiReplyStatus.DONE, datetime(2025, 12, 31, 23, 59, tzinfo=UTC), 1, 1, 300),
    ]
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        chat = Chat(type=ChatType.GROUP, title="Usage")
        session.add(chat)
        await session.flush()
        for who, model, status, when, input_tokens, output_tokens, cost in rows:
            session.add(
                AiReply(
                    chat_id=chat.id,
                    requested_by=who.id,
                    model=model,
                    provider="openai",
                    max_tokens=100,
                    status=status,
                    created_at=when,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_micros=cost,
                )
            )
    return alice, bob


async def test_usage_reports_replies_per_user_and_model_for_a_period(
    billing_database_url: str, billing_sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    await _replies(billing_sessionmaker)
    report = await admin(
        billing_database_url, tmp_path, "usage", "--from", "2026-01-01", "--to", "2026-01-31"
    )
    assert report.code == 0, report.err
    assert report.out.splitlines() == [
        "telegram_id\tusername\tmodel\treplies\tinput_tokens\toutput_tokens\tcost_credits",
        "7411\talice\tgpt-4o-mini\t1\t1000\t100\t0.00021",
        "7411\talice\tpricey\t2\t110\t55\t0.022",
        "7412\t\tpricey\t1\t20\t10\t0.004",
        "total\t\t\t4\t1130\t165\t0.02621",
    ]
