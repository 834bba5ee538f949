"""Events on their way out: staged in the unit of work, published only after it commits.

On the wire to the broker an event is an envelope: one header line with the ids of the users it
is for, then the frame exactly as clients receive it. The frame is serialized once, here, and
every socket gets the same bytes.

Whatever rolls back takes its staged events with it: a savepoint what was staged inside it, the
transaction everything (`discard_rolled_back`, which the unit of work's session calls on every
rollback, by hand or not).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from core.broker import Broker

_OUTBOX = "outbox"


def encode_frame(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True, slots=True)
class Envelope:
    user_ids: list[int]
    chat_id: int | None
    seq: int | None  # None for ephemeral events (typing, presence, AI deltas): never stored
    frame: bytes
    # Addressed to a part of the server (e.g. "ai": a reply job to run or cancel), not to users.
    service: str | None = None


def encode_envelope(
    user_ids: Iterable[int],
    frame: bytes,
    *,
    chat_id: int | None = None,
    seq: int | None = None,
    service: str | None = None,
) -> bytes:
    header = {"u": sorted(set(user_ids)), "c": chat_id, "s": seq, "k": service}
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + frame


def decode_envelope(data: bytes) -> Envelope:
    header, _, frame = data.partition(b"\n")
    fields = json.loads(header)
    return Envelope(
        user_ids=fields["u"],
        chat_id=fields["c"],
        seq=fields["s"],
        frame=frame,
        service=fields.get("k"),
    )


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
