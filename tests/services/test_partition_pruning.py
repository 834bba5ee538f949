"""Every hot query of history reads one partition of `messages` and `chat_events` (PostgreSQL).

The services run as they do in the app, on a connection where `auto_explain` logs the plan of
every statement they run (those inside `post_message` too), as executed: a partition the
planner pruned is not in the plan, one pruned at run time was never executed. The chats of the
tests are spread over several partitions, so a query that is not pruned would read them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models import Chat, User
from services.chats.lifecycle import create_chat
from services.chats.listing import chat_list_version, list_chats
from services.events import encoded_events_after, events_after
from services.messages import (
    MessageDraft,
    delete_message,
    edit_message,
    history,
    history_page,
    history_page_version,
    mark_all_read,
    mark_read,
    send_message,
    set_reaction,
)
from tests.services.helpers import new_user

pytestmark = pytest.mark.postgres

PARTITION = re.compile(r"(messages|chat_events)_p\d+")
# Chats enough that their partitions differ (16 partitions).
CHATS = 6
MARKER = "SELECT 'plans so far'"


@dataclass
class Plans:
    """The plans of the statements a call runs, as auto_explain logged them.

    Inside a transaction a statement's executor (and so its plan's log) ends when the next
    statement comes: two marker statements after the call bring in the plan of its last one.
    The driver hands log messages over in the order they came, before the result that follows
    them."""

    connection: AsyncConnection
    logged: list[dict[str, Any]] = field(default_factory=list)

    def listen(self, _connection: Any, message: Any) -> None:
        if "plan:" not in message.message:
            return
        plan = json.loads(message.message.split("plan:", 1)[1])
        if plan["Query Text"] != MARKER:
            self.logged.append(plan)

    async def _settle(self) -> None:
        for _ in range(2):
            await self.connection.exec_driver_sql(MARKER)

    async def of(self, call: Callable[[], Awaitable[Any]]) -> list[dict[str, Any]]:
        await self._settle()
        self.logged.clear()
        await call()
        await self._settle()
        return list(self.logged)


def _partitions_read(node: dict[str, Any], read: dict[str, set[str]]) -> None:
    relation = node.get("Relation Name", "")
    if (found := PARTITION.fullmatch(relation)) and node.get("Actual Loops", 0) > 0:
        read.setdefault(found.group(1), set()).add(relation)
    for child in node.get("Plans", ()):
        _partitions_read(child, read)


def partitions_read(plan: dict[str, Any]) -> dict[str, set[str]]:
    """The partitions of each partitioned table the statement read, by table."""
    read: dict[str, set[str]] = {}
    _partitions_read(plan["Plan"], read)
    return read


def assert_one_partition_each(plans: list[dict[str, Any]]) -> set[str]:
    """Every statement read at most one partition of each table; returns the tables read."""
    tables: set[str] = set()
    for plan in plans:
        read = partitions_read(plan)
        for table, partitions in read.items():
            assert len(partitions) == 1, (table, sorted(partitions), plan["Query Text"])
        tables |= read.keys()
    return tables


@pytest.fixture
async def plans(session: AsyncSession) -> AsyncIterator[Plans]:
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    recorder = Plans(connection)
    driver.add_log_listener(recorder.listen)
    for setting in (
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_timing = off",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_format = json",
        "SET client_min_messages = log",
    ):
        await connection.exec_driver_sql(setting)
    try:
        yield recorder
    finally:
        driver.remove_log_listener(recorder.listen)
        await connection.exec_driver_sql("RESET client_min_messages")
        await connection.exec_driver_sql("SET auto_explain.log_min_duration = -1")


@dataclass
class Talk:
    alice: User
    bob: User
    chats: list[Chat]
    last_ids: list[int]

    @property
    def chat(self) -> Chat:
        return self.chats[0]


@pytest.fixture
async def talk(session: AsyncSession) -> Talk:
    """Alice and Bob in `CHATS` groups, with a few messages in each."""
    alice = await new_user(session, 24001, "Alice")
    bob = await new_user(session, 24002, "Bob")
    chats, last_ids = [], []
    for n in range(CHATS):
        created = await create_chat(
            session, alice, chat_type="group", title=f"g{n}", member_ids=[bob.id]
        )
        chats.append(created.chat)
        for sender in (alice, bob, alice):
            sent = await send_message(
                session, sender, created.chat.id, MessageDraft(text=f"hello {n}")
            )
        last_ids.append(sent.view.id)
    return Talk(alice, bob, chats, last_ids)


async def test_a_send_reads_and_writes_one_partition(
    session: AsyncSession, plans: Plans, talk: Talk
) -> None:
    draft = MessageDraft(text="reply", reply_to_message_id=talk.last_ids[0], client_msg_id="p1")

    async def send() -> None:
        await send_message(session, talk.bob, talk.chat.id, draft)

    logged = await plans.of(send)
    assert any("post_message" in plan["Query Text"] for plan in logged)
    # The reply's check and the earlier attempt's lookup read messages; the event is written.
    assert assert_one_partition_each(logged) == {"messages"}
    retried = await plans.of(send)  # found by client_msg_id: the original
    assert assert_one_partition_each(retried) == {"messages"}


async def test_history_pages_read_one_partition(
    session: AsyncSession, plans: Plans, talk: Talk
) -> None:
    chat_id, bob = talk.chat.id, talk.bob
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: history(session, bob, chat_id),
        lambda: history(session, bob, chat_id, before_id=talk.last_ids[0]),
        lambda: history(session, bob, chat_id, after_id=talk.last_ids[0] - 2),
        lambda: history_page(session, bob, chat_id, page=1, per_page=2),
        lambda: history_page_version(session, bob, chat_id, page=1, per_page=2),
    ]
    for call in calls:
        assert assert_one_partition_each(await plans.of(call)) == {"messages"}


async def test_the_events_replay_reads_one_partition(
    session: AsyncSession, plans: Plans, talk: Talk
) -> None:
    chat_id = talk.chat.id
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: encoded_events_after(session, chat_id, 0, 100),
        lambda: events_after(session, chat_id, 0, 100),
    ]
    for call in calls:
        assert assert_one_partition_each(await plans.of(call)) == {"chat_events"}


async def test_read_receipts_read_one_partition(
    session: AsyncSession, plans: Plans, talk: Talk
) -> None:
    chat_id, bob = talk.chat.id, talk.bob
    logged = await plans.of(lambda: mark_read(session, bob, chat_id, talk.last_ids[0] - 1))
    assert assert_one_partition_each(logged) == {"messages"}
    logged = await plans.of(lambda: mark_all_read(session, bob, chat_id))
    assert assert_one_partition_each(logged) == {"messages"}


async def test_the_chat_list_reads_one_partition_per_chat(
    session: AsyncSession, plans: Plans, talk: Talk
) -> None:
    """Each chat's last message and unread count come from its partition: a user in two chats
    reads at most two partitions, however many partitions hold others' chats. With a handful of
    rows the planner rightly reads whole tables instead; with a history it finds each listed
    chat's messages by index, a chat at a time, as it is made to plan here."""
    connection = await session.connection()
    for join in ("hashjoin", "mergejoin", "seqscan"):
        await connection.exec_driver_sql(f"SET LOCAL enable_{join} = off")
    carol = await new_user(session, 24003, "Carol")
    await create_chat(session, carol, chat_type="group", title="own", member_ids=[talk.bob.id])
    own = (await create_chat(session, carol, chat_type="group", title="own")).chat
    await send_message(session, carol, own.id, MessageDraft(text="note to self"))
    for call in (lambda: list_chats(session, carol), lambda: chat_list_version(session, carol)):
        logged = await plans.of(call)
        read: dict[str, set[str]] = {}
        for plan in logged:
            for table, partitions in partitions_read(plan).items():
                read.setdefault(table, set()).update(partitions)
        # Carol's chats: her own, with a message, and one with Bob, without any.
        assert len(read["messages"]) <= 2


async def test_after_finding_a_message_by_id_a_change_reads_one_partition(
    session: AsyncSession, plans: Plans, talk: Talk
) -> None:
    """The routes name a message by its id alone: finding it looks in every partition (see
    docs/SCALING.md); all that follows reads and writes its chat's partition."""
    message_id, alice = talk.last_ids[0], talk.alice
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: set_reaction(session, talk.bob, message_id, "👍"),
        lambda: edit_message(session, alice, message_id, "edited"),
        lambda: delete_message(session, alice, message_id),
    ]
    for call in calls:
        logged = await plans.of(call)
        by_id, rest = logged[0], logged[1:]
        assert len(partitions_read(by_id)["messages"]) > 1
        assert "messages" in assert_one_partition_each(rest)
