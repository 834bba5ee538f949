"""Events on their way out: staged in the unit of work (as envelopes, core/envelope.py),
published only after it commits.

Whatever rolls back takes its staged events with it: a savepoint what was staged inside it, the
transaction everything (`discard_rolled_back`, which the unit of work's session calls on every
rollback, by hand or not).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from core.broker import Broker

_OUTBOX = "outbox"


# A staged envelope and the savepoint it was staged in (None: outside any).
_Staged = tuple[SessionTransaction | None, bytes]


def stage(session: AsyncSession, envelope: bytes, *, first: bool = False) -> None:
    """Queue an envelope to publish once this session's transaction has committed; `first`
    puts it ahead of what is already staged."""
    outbox: list[_Staged] = session.info.setdefault(_OUTBOX, [])
    staged = (session.sync_session.get_nested_transaction(), envelope)
    if first:
        outbox.insert(0, staged)
    else:
        outbox.append(staged)


def has_staged(session: AsyncSession) -> bool:
    return bool(session.info.get(_OUTBOX))


def discard_staged(session: AsyncSession) -> None:
    session.info.pop(_OUTBOX, None)


def discard_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    """`transaction` rolled back: drop what was staged in it (and in savepoints inside it)."""
    outbox: list[_Staged] | None = session.info.get(_OUTBOX)
    if not outbox:
        return
    if not transaction.nested:
        del session.info[_OUTBOX]
        return
    session.info[_OUTBOX] = [
        (savepoint, envelope)
        for savepoint, envelope in outbox
        if not _inside(savepoint, transaction)
    ]


def _inside(savepoint: SessionTransaction | None, transaction: SessionTransaction) -> bool:
    while savepoint is not None:
        if savepoint is transaction:
            return True
        savepoint = savepoint.parent
    return False


async def publish_staged(session: AsyncSession, broker: Broker) -> None:
    for _savepoint, envelope in session.info.pop(_OUTBOX, ()):
        await broker.publish(envelope)
