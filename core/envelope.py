"""Envelopes: an event on its way to the sockets and services that want it.

On the wire an envelope is one header line (who and what it is for) and then the frame exactly
as clients receive it: the frame is serialized once, and every socket gets the same bytes.

The header decides where the envelope goes (its routes, see core/broker.py): an envelope for
users goes to each of them, one for a part of the server (`service`: an AI job to run, a
revoked session) goes to every process, and `topics` name consumers that want a kind of event
whoever it is for (the bot's notifier wants every new message).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

BROADCAST = "all"


def user_route(user_id: int) -> str:
    """The route of what is for one user: the processes holding that user's sockets."""
    return f"u:{user_id}"


def routed_user(route: str) -> int | None:
    """The user a route is for; None for any other route."""
    return int(route[2:]) if route.startswith("u:") else None


def topic_route(topic: str) -> str:
    """The route of a topic: the processes whose consumers asked for it."""
    return f"t:{topic}"


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
    topics: tuple[str, ...] = ()

    def routes(self) -> list[str]:
        if self.service is not None:
            return [BROADCAST]
        return [*map(user_route, self.user_ids), *map(topic_route, self.topics)]


def encode_envelope(
    user_ids: Iterable[int],
    frame: bytes,
    *,
    chat_id: int | None = None,
    seq: int | None = None,
    service: str | None = None,
    topics: Iterable[str] = (),
) -> bytes:
    header: dict[str, Any] = {"u": sorted(set(user_ids)), "c": chat_id, "s": seq, "k": service}
    if topics:
        header["t"] = sorted(topics)
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
        topics=tuple(fields.get("t", ())),
    )
