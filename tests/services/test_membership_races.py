"""Joining and leaving a group at the same moment, at the service level, each attempt its own
unit of work on its own connection (PostgreSQL: there the attempts really overlap)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import MemoryBroker
from core.db import read_session, unit_of_work
from core.errors import AppError
from models import ChatEvent, ChatMember, User
from services.chats.invitations import create_invite_link, join_by_invite_link
from services.chats.lifecycle import create_chat
from services.chats.members import leave_chat
from tests.services.helpers import event_seqs, new_user

pytestmark = pytest.mark.postgres

Sessionmaker = async_sessionmaker[AsyncSession]
ATTEMPTS = 6


async def _group_with_link(sessionmaker: Sessionmaker) -> tuple[int, str]:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        owner = await new_user(session, 12001, "Olga")
        chat = (await create_chat(session, owner, chat_type="group", title="Club")).chat
        link = await create_invite_link(session, owner, chat.id)
        return chat.id, link.token


async def _users(sessionmaker: Sessionmaker, count: int) -> list[User]:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        return [await new_user(session, 12100 + i, f"User{i}") for i in range(count)]


async def _each_in_its_own_unit_of_work(
    sessionmaker: Sessionmaker, actions: list[Callable[[AsyncSession], Awaitable[object]]]
) -> list[object]:
    async def run(action: Callable[[AsyncSession], Awaitable[object]]) -> object:
        async with unit_of_work(sessionmaker, MemoryBroker()) as session:
            return await action(session)

    return list(await asyncio.gather(*(run(a) for a in actions), return_exceptions=True))


async def _state(sessionmaker: Sessionmaker, chat_id: int) -> tuple[list[int], dict[str, int]]:
    """The members' user ids and the chat's events counted by type; the seqs must be 1..n."""
    async with read_session(sessionmaker) as session:
        members = await session.scalars(
            select(ChatMember.user_id).where(ChatMember.chat_id == chat_id)
        )
        counted = await session.execute(
            select(ChatEvent.type, func.count())
            .where(ChatEvent.chat_id == chat_id)
            .group_by(ChatEvent.type)
        )
        seqs = await event_seqs(session, chat_id)
    assert seqs == list(range(1, len(seqs) + 1))
    return sorted(members), {str(type_): int(count) for type_, count in counted}


async def test_one_person_joining_many_times_at_once_joins_once(
    sessionmaker: Sessionmaker,
) -> None:
    chat_id, token = await _group_with_link(sessionmaker)
    (user,) = await _users(sessionmaker, 1)
    results = await _each_in_its_own_unit_of_work(
        sessionmaker,
        [partial(join_by_invite_link, user=user, token=token)] * ATTEMPTS,
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    members, events = await _state(sessionmaker, chat_id)
    assert user.id in members
    assert len(members) == 2
    assert events["member_added"] == 2  # the owner's, then this one's


async def test_many_people_joining_at_once_all_join_with_gapless_seqs(
    sessionmaker: Sessionmaker,
) -> None:
    chat_id, token = await _group_with_link(sessionmaker)
    users = await _users(sessionmaker, ATTEMPTS)
    results = await _each_in_its_own_unit_of_work(
        sessionmaker,
        [partial(join_by_invite_link, user=u, token=token) for u in users],
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    members, events = await _state(sessionmaker, chat_id)
    assert len(members) == ATTEMPTS + 1
    assert events["member_added"] == ATTEMPTS + 1


async def test_one_person_leaving_many_times_at_once_leaves_once(
    sessionmaker: Sessionmaker,
) -> None:
    chat_id, token = await _group_with_link(sessionmaker)
    (user,) = await _users(sessionmaker, 1)
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        await join_by_invite_link(session, user, token)
    results = await _each_in_its_own_unit_of_work(
        sessionmaker, [partial(leave_chat, user=user, chat_id=chat_id)] * ATTEMPTS
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == ATTEMPTS - 1
    assert all(isinstance(r, AppError) and r.code == "chat_not_found" for r in refused)
    members, events = await _state(sessionmaker, chat_id)
    assert user.id not in members
    assert events["member_removed"] == 1


async def test_joins_and_leaves_at_once_leave_members_and_events_that_agree(
    sessionmaker: Sessionmaker,
) -> None:
    chat_id, token = await _group_with_link(sessionmaker)
    leaving = await _users(sessionmaker, ATTEMPTS)
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        for user in leaving:
            await join_by_invite_link(session, user, token)
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        joining = [await new_user(session, 12200 + i, f"New{i}") for i in range(ATTEMPTS)]
    actions: list[Callable[[AsyncSession], Awaitable[object]]] = []
    for leaver, joiner in zip(leaving, joining, strict=True):
        actions.append(partial(leave_chat, user=leaver, chat_id=chat_id))
        actions.append(partial(join_by_invite_link, user=joiner, token=token))
    results = await _each_in_its_own_unit_of_work(sessionmaker, actions)
    assert not [r for r in results if isinstance(r, BaseException)]
    members, events = await _state(sessionmaker, chat_id)
    assert not {u.id for u in leaving} & set(members)
    assert {u.id for u in joining} <= set(members)
    assert len(members) == ATTEMPTS + 1
    assert events["member_added"] - events["member_removed"] == len(members)
