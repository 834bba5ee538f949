"""The schema makes bad states impossible, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Chat, ChatEvent, ChatMember, ChatType, Message, User


async def _user(session: AsyncSession, telegram_id: int, username: str | None = None) -> User:
    user = User(telegram_id=telegram_id, username=username, first_name="U")
    session.add(user)
    await session.flush()
    return user


async def test_telegram_ids_are_64_bit_and_unique(session: AsyncSession) -> None:
    big = 2**52 + 7
    await _user(session, big)
    await session.commit()
    assert (await session.scalars(select(User.telegram_id))).one() == big
    session.add(User(telegram_id=big, first_name="again"))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_usernames_are_unique_ignoring_case(session: AsyncSession) -> None:
    await _user(session, 1, "Alice")
    with pytest.raises(IntegrityError):
        await _user(session, 2, "alice")


async def test_a_user_is_a_member_of_a_chat_once(session: AsyncSession) -> None:
    user = await _user(session, 1)
    chat = Chat(type=ChatType.GROUP, title="g")
    session.add(chat)
    await session.flush()
    session.add(ChatMember(chat_id=chat.id, user_id=user.id))
    await session.flush()
    session.add(ChatMember(chat_id=chat.id, user_id=user.id))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_client_msg_id_is_unique_per_sender_in_a_chat_and_seq_per_chat(
    session: AsyncSession,
) -> None:
    alice, bob = await _user(session, 1), await _user(session, 2)
    chat, other = Chat(type=ChatType.PRIVATE), Chat(type=ChatType.GROUP, title="g")
    session.add_all([chat, other])
    await session.flush()
    session.add_all(
        [
            Message(chat_id=chat.id, sender_id=alice.id, seq=1, text="a", client_msg_id="m1"),
            Message(chat_id=chat.id, sender_id=bob.id, seq=2, text="b", client_msg_id="m1"),
            Message(chat_id=other.id, sender_id=alice.id, seq=1, text="c", client_msg_id="m1"),
        ]
    )
    await session.flush()
    async with session.begin_nested():
        session.add(Message(chat_id=chat.id, sender_id=alice.id, seq=3, client_msg_id="m1"))
        with pytest.raises(IntegrityError):
            await session.flush()
    session.add(Message(chat_id=chat.id, sender_id=alice.id, seq=2, text="dup seq"))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_chat_event_seq_is_the_primary_key_within_a_chat(session: AsyncSession) -> None:
    chat = Chat(type=ChatType.GROUP, title="g")
    session.add(chat)
    await session.flush()
    session.add(ChatEvent(chat_id=chat.id, seq=1, type="chat_updated", payload={"a": 1}))
    await session.flush()
    session.add(ChatEvent(chat_id=chat.id, seq=1, type="chat_updated", payload={}))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_enumerated_columns_reject_unknown_values(session: AsyncSession) -> None:
    session.add(Chat(type="channel"))
    with pytest.raises((IntegrityError, StatementError, LookupError)):
        await session.flush()


async def test_timestamps_come_back_timezone_aware_utc(session: AsyncSession) -> None:
    user = await _user(session, 5)
    user.last_seen_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await session.commit()
    session.expunge_all()
    loaded = (await session.scalars(select(User))).one()
    assert loaded.created_at.tzinfo is not None
    assert loaded.last_seen_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_naive_datetimes_are_refused(session: AsyncSession) -> None:
    user = await _user(session, 6)
    user.last_seen_at = datetime(2026, 1, 1)
    with pytest.raises(StatementError, match="naive"):
        await session.flush()
