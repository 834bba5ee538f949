from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import create_engine, create_sessionmaker
from migrations.sqlite import SQLITE_FTS_TABLES
from models import Base, User
from models.base import JsonDocument
from services.messages import MessageDraft, send_message
from tests.support.database import (
    TEST_DATABASE_URL,
    alembic_config,
    fresh_database_url,
    run_alembic,
)

PARTITIONS = importlib.import_module("migrations.versions.0010_partitioned_history").PARTITIONS


def _tables(connection: Connection) -> set[str]:
    """The tables, partitions and SQLite's full-text tables aside."""
    partitions: set[str] = set()
    if connection.dialect.name == "postgresql":
        found = connection.execute(text("SELECT relname FROM pg_class WHERE relispartition"))
        partitions = set(found.scalars())
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"} - partitions
    return {table for table in tables if not SQLITE_FTS_TABLES.fullmatch(table)}


def _check(connection: Connection) -> None:
    """Raises when the database differs from the models, as migrations/env.py compares them."""
    command.check(alembic_config(connection))


async def test_upgrade_downgrade_upgrade_on_an_empty_database(tmp_path: Path) -> None:
    async with fresh_database_url(TEST_DATABASE_URL, tmp_path) as url:
        engine = create_engine(url)
        try:
            await run_alembic(engine, "upgrade", "head")
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == set(Base.metadata.tables)
            await run_alembic(engine, "downgrade", "base")
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == set()
            await run_alembic(engine, "upgrade", "head")
            async with engine.connect() as connection:
                await connection.run_sync(_check)
        finally:
            await engine.dispose()


def test_history_is_linear() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    root = Path(__file__).resolve().parents[2]
    script = ScriptDirectory.from_config(Config(str(root / "alembic.ini")))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


# -- 0010: partitioned history ----------------------------------------------------------------

_MESSAGES = (
    "SELECT id, chat_id, seq, sender_id, reply_to_id, client_msg_id, text FROM messages ORDER BY id"
)
_EVENTS = "SELECT chat_id, seq, type FROM chat_events ORDER BY chat_id, seq"


async def _history_at_0009(connection: AsyncConnection) -> dict[str, int]:
    """Two users and a bot in two groups, messages (a reply, an idempotency key, an AI reply
    with its job), their events, a reaction and an attachment, written as 0009 keeps them."""
    ids: dict[str, int] = {}

    async def insert(key: str, statement: str, **values: Any) -> None:
        found = await connection.execute(text(f"{statement} RETURNING id"), values)
        ids[key] = found.scalar_one()

    for name, telegram_id, is_bot in (
        ("alice", 501, False),
        ("bob", 502, False),
        ("ai", 503, True),
    ):
        await insert(
            name,
            "INSERT INTO users (telegram_id, first_name, is_premium, allows_write_to_pm, is_bot,"
            " is_admin) VALUES (:telegram_id, :name, false, false, :is_bot, false)",
            telegram_id=telegram_id,
            name=name,
            is_bot=is_bot,
        )
    for name in ("team", "other"):
        await insert(
            name,
            "INSERT INTO chats (type, title, is_active) VALUES ('group', :title, true)",
            title=name,
        )
        for user in ("alice", "bob"):
            await connection.execute(
                text(
                    "INSERT INTO chat_members (chat_id, user_id, role, is_favorite, is_muted,"
                    " is_archived) VALUES (:chat, :user, 'member', false, false, false)"
                ),
                {"chat": ids[name], "user": ids[user]},
            )
    messages = (
        ("hello", "team", "alice", "c-1", None),
        ("a reply", "team", "bob", None, "hello"),
        ("the AI says", "team", "ai", None, None),
        ("elsewhere", "other", "alice", "c-2", None),
    )
    seqs: dict[str, int] = {}
    for message, chat, sender, client_msg_id, reply_to in messages:
        seqs[chat] = seqs.get(chat, 0) + 1
        await insert(
            message,
            "INSERT INTO messages (chat_id, sender_id, seq, type, text, reply_to_id,"
            " client_msg_id) VALUES (:chat, :sender, :seq, 'text', :text, :reply_to, :client)",
            chat=ids[chat],
            sender=ids[sender],
            seq=seqs[chat],
            text=message,
            reply_to=ids[reply_to] if reply_to else None,
            client=client_msg_id,
        )
        await connection.execute(
            text(
                "INSERT INTO chat_events (chat_id, seq, type, payload)"
                " VALUES (:chat, :seq, 'new_message', :payload)"
            ).bindparams(bindparam("payload", type_=JsonDocument)),
            {"chat": ids[chat], "seq": seqs[chat], "payload": {"message": {"text": message}}},
        )
    for chat, seq in seqs.items():
        await connection.execute(
            text("UPDATE chats SET last_seq = :seq WHERE id = :chat"),
            {"seq": seq, "chat": ids[chat]},
        )
    await connection.execute(
        text("INSERT INTO message_reactions (message_id, user_id, emoji) VALUES (:m, :u, 'ok')"),
        {"m": ids["hello"], "u": ids["bob"]},
    )
    await insert(
        "photo",
        "INSERT INTO media (kind, mime_type, size, sha256) VALUES ('photo', 'image/png', 1, :sha)",
        sha="0" * 64,
    )
    await connection.execute(
        text("INSERT INTO message_media (message_id, media_id, position) VALUES (:m, :media, 0)"),
        {"m": ids["elsewhere"], "media": ids["photo"]},
    )
    await insert(
        "job",
        "INSERT INTO ai_replies (chat_id, trigger_message_id, reply_message_id, model, provider,"
        " status, max_tokens) VALUES (:chat, :trigger, :reply, 'm', 'p', 'done', 10)",
        chat=ids["team"],
        trigger=ids["hello"],
        reply=ids["the AI says"],
    )
    return ids


async def _rows(connection: AsyncConnection, statement: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await connection.execute(text(statement))]


async def test_upgrading_a_database_with_history_keeps_it_and_sends_go_on(
    tmp_path: Path,
) -> None:
    async with fresh_database_url(TEST_DATABASE_URL, tmp_path) as url:
        engine = create_engine(url)
        try:
            await run_alembic(engine, "upgrade", "0009")
            async with engine.begin() as connection:
                ids = await _history_at_0009(connection)
                messages, events = (
                    await _rows(connection, _MESSAGES),
                    await _rows(connection, _EVENTS),
                )
            await run_alembic(engine, "upgrade", "head")

            async with engine.connect() as connection:
                assert await _rows(connection, _MESSAGES) == messages
                assert await _rows(connection, _EVENTS) == events
                assert await _rows(
                    connection, "SELECT message_id, chat_id, user_id FROM message_reactions"
                ) == [(ids["hello"], ids["team"], ids["bob"])]
                assert await _rows(connection, "SELECT message_id, chat_id FROM message_media") == [
                    (ids["elsewhere"], ids["other"])
                ]
                assert await _rows(
                    connection, "SELECT trigger_message_id, reply_message_id FROM ai_replies"
                ) == [(ids["hello"], ids["the AI says"])]
                if connection.dialect.name == "postgresql":
                    for table in ("messages", "chat_events"):
                        partitions = await connection.scalar(
                            text(
                                "SELECT count(*) FROM pg_inherits"
                                f" WHERE inhparent = '{table}'::regclass"
                            )
                        )
                        assert partitions == PARTITIONS

            sessionmaker = create_sessionmaker(engine)
            async with sessionmaker() as session, session.begin():
                alice = await session.get(User, ids["alice"])
                assert alice is not None
                sent = await send_message(
                    session, alice, ids["team"], MessageDraft(text="after", client_msg_id="c-3")
                )
                retried = await send_message(
                    session, alice, ids["team"], MessageDraft(text="hello", client_msg_id="c-1")
                )
            # The id sequence and the chat's seq go on where they were.
            assert (sent.created, sent.view.id, sent.view.seq) == (True, ids["elsewhere"] + 1, 4)
            assert (retried.created, retried.view.id) == (False, ids["hello"])

            await run_alembic(engine, "downgrade", "0009")
            async with engine.connect() as connection:
                after = await _rows(connection, _MESSAGES)
                assert after[:-1] == messages
                assert after[-1][:3] == (sent.view.id, ids["team"], 4)
                assert await _rows(
                    connection, "SELECT message_id, user_id FROM message_reactions"
                ) == [(ids["hello"], ids["bob"])]
        finally:
            await engine.dispose()
