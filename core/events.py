"""Events on their way out: staged in the unit of work, published only after it commits.

On the wire to the broker an event is an envelope: one header line with the ids of the users it
is for, then the frame exactly as clients receive it. The frame is serialized once, here, and
every socket gets the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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


def stage(session: AsyncSession, envelope: bytes, *, first: bool = False) -> None:
    """Queue an envelope to publish once this session's transaction has committed; `first`
    puts it ahead of what is already staged."""
    outbox: list[bytes] = session.info.setdefault(_OUTBOX, [])
    if first:
        outbox.insert(0, envelope)
    else:
        outbox.append(envelope)


def discard_staged(session: AsyncSession) -> None:
    session.info.pop(_OUTBOX, None)


async def publish_staged(session: AsyncSession, broker: Broker) -> None:
    for envelope in session.info.pop(_OUTBOX, ()):
        await broker.publish(envelope)
