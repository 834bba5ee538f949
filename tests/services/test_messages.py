"""The message writer at the service level: retries with a client_msg_id, and a sequence of
seqs that keeps no gap when a send is rolled back or turns out to be a retry."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models import Chat, User
from services.chats.lifecycle import create_chat
from services.messages import MessageDraft, send_message
from tests.services.helpers import event_count, event_seqs, last_seq, new_user, staged_seqs


async def _two_in_a_chat(session: AsyncSession, first_id: int) -> tuple[User, User, Chat]:
    """Alice, Bob and their private chat."""
    alice = await new_user(session, first_id, "Alice")
    bob = await new_user(session, first_id + 1, "Bob")
    chat = (await create_chat(session, alice, chat_type="private", member_ids=[bob.id])).chat
    return alice, bob, chat


async def test_a_retry_returns_the_original_and_records_nothing(session: AsyncSession) -> None:
    alice, _, chat = await _two_in_a_chat(session, 11011)
    await staged_seqs(session)  # the chat's creation
    first = await send_message(
        session, alice, chat.id, MessageDraft(text="hello", client_msg_id="c-1")
    )
    assert first.created
    assert await staged_seqs(session) == [first.view.seq]
    events, seq = await event_count(session, chat.id), await last_seq(session, chat.id)

    retry = await send_message(
        session, alice, chat.id, MessageDraft(text="hello", client_msg_id="c-1")
    )
    assert not retry.created
    assert retry.view.id == first.view.id
    assert retry.view.model_dump() == first.view.model_dump()
    assert await staged_seqs(session) == []
    assert (await event_count(session, chat.id), await last_seq(session, chat.id)) == (events, seq)
    # The seq the retry took was given back: the next message takes the very next one.
    after = await send_message(session, alice, chat.id, MessageDraft(text="and more"))
    assert after.view.seq == first.view.seq + 1


async def test_a_client_msg_id_is_the_senders_within_a_chat(session: AsyncSession) -> None:
    """The key is (chat, sender, client_msg_id), as the history is partitioned by chat: the
    same id in another chat is another message (see docs/SCALING.md)."""
    alice, _, first = await _two_in_a_chat(session, 11021)
    other = (await create_chat(session, alice, chat_type="group", title="Team")).chat
    one = await send_message(
        session, alice, first.id, MessageDraft(text="one", client_msg_id="c-2")
    )
    two = await send_message(
        session, alice, other.id, MessageDraft(text="two", client_msg_id="c-2")
    )
    assert two.created
    assert (two.view.chat_id, two.view.text) == (other.id, "two")
    assert two.view.id != one.view.id
    retry = await send_message(
        session, alice, other.id, MessageDraft(text="two", client_msg_id="c-2")
    )
    assert (retry.created, retry.view.id) == (False, two.view.id)


async def test_a_rolled_back_send_gives_its_seq_and_its_event_back(
    session: AsyncSession,
) -> None:
    alice, bob, chat = await _two_in_a_chat(session, 11031)
    kept = (await send_message(session, alice, chat.id, MessageDraft(text="kept"))).view.seq
    chat_id = chat.id  # the rollback expires the objects it loaded
    await staged_seqs(session)

    savepoint = await session.begin_nested()
    undone = await send_message(session, bob, chat_id, MessageDraft(text="undone"))
    assert undone.view.seq == kept + 1
    await savepoint.rollback()
    assert await last_seq(session, chat_id) == kept
    assert await staged_seqs(session) == []  # its event went with the rollback

    later = await send_message(session, bob, chat_id, MessageDraft(text="later"))
    assert later.view.seq == kept + 1
    assert await staged_seqs(session) == [later.view.seq]
    seqs = await event_seqs(session, chat_id)
    assert seqs == list(range(1, seqs[-1] + 1))  # no gap from the chat's first event
