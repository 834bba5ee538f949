"""What a soak run does, decided up front from its seed: its size, its phases, its sends."""

from __future__ import annotations

import bisect
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from bench.cluster import Redis
from bench.redis_cluster import LocalRedisCluster

logger = logging.getLogger("bench.soak")

TRANSPORTS = ("rest", "aeon", "ws")
# The Redis the soak runs (and kills): one server, or a local cluster.
SoakRedis: TypeAlias = Redis | LocalRedisCluster

TEXT_LENGTH = (20, 2000)  # big enough that a client that stops reading fills its buffers


@dataclass(frozen=True)
class SoakOptions:
    seed: int
    duration: float = 300.0  # seconds of load, the faults included; the settling comes after
    users: int = 20  # in private chats of two, and in `groups` groups of users / groups each
    groups: int = 2
    rate: float = 30.0  # sends per second, half of them to the groups
    group_share: float = 0.5
    drop_every: tuple[float, float] = (3.0, 6.0)  # seconds between socket aborts
    redis_outage: float = 20.0
    # A Redis Cluster of three primaries instead of one server; the outage is one node's.
    redis_cluster: bool = False
    slow_pause: float = 60.0  # how long the slow consumer stops reading
    resend_share: float = 0.12  # confirmed sends sent again on purpose
    ws_send_queue: int = 64

    @classmethod
    def quick(cls, seed: int) -> SoakOptions:
        """The bounded form CI runs (about 3 minutes): the full size and faults, shorter
        phases. The pause stays long enough for the keepalive to give up on the slow consumer
        (ping interval + ping timeout: up to 40 s)."""
        return cls(seed=seed, duration=120.0)

    def __post_init__(self) -> None:
        if self.users < 4 or self.users % 2 or self.users % self.groups:
            raise ValueError("users must be even, at least 4, and a multiple of groups")
        if self.users // self.groups < 2:
            raise ValueError("a group needs at least two members")

    @property
    def tail(self) -> float:
        """How long each fault phase goes on after its fault ended."""
        return max(10.0, self.duration * 0.05)

    @property
    def lead(self) -> float:
        """The steady phase, and the phase of socket drops alone."""
        return max(10.0, self.duration * 0.1)

    def rng(self, purpose: str) -> random.Random:
        """One generator per purpose, so that e.g. the faults' choices do not depend on how
        many sends were planned before them."""
        return random.Random(f"{self.seed}:{purpose}")


# -- phases ---------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    started: float  # wall clock, comparable with the database's timestamps
    ended: float | None = None
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started


class Timeline:
    """The phases, one after the other; anything timed belongs to the phase it happened in."""

    def __init__(self) -> None:
        self.phases: list[Phase] = []

    def begin(self, name: str) -> Phase:
        now = time.time()
        if self.phases:
            self.phases[-1].ended = now
        phase = Phase(name, now)
        self.phases.append(phase)
        logger.info("phase: %s", name)
        return phase

    def end(self) -> None:
        if self.phases and self.phases[-1].ended is None:
            self.phases[-1].ended = time.time()

    @property
    def current(self) -> str:
        return self.phases[-1].name

    def phase_at(self, at: float) -> str:
        """The phase running at `at`; the first one for anything earlier."""
        starts = [phase.started for phase in self.phases]
        index = max(0, bisect.bisect_right(starts, at) - 1)
        return self.phases[index].name

    def names(self) -> list[str]:
        return [phase.name for phase in self.phases]


# -- chats and sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatPlan:
    """A chat of the soak: its members are indexes of the soak's users."""

    index: int
    kind: str  # "private" or "group"
    members: tuple[int, ...]


def chat_plans(options: SoakOptions) -> list[ChatPlan]:
    """Users 2k and 2k+1 share a private chat; user i is in group i % groups."""
    chats = [
        ChatPlan(index, "private", (2 * index, 2 * index + 1))
        for index in range(options.users // 2)
    ]
    for group in range(options.groups):
        members = tuple(user for user in range(options.users) if user % options.groups == group)
        chats.append(ChatPlan(len(chats), "group", members))
    return chats


@dataclass(frozen=True)
class SendPlan:
    number: int
    client_msg_id: str
    chat: int  # index into the chat plans
    sender: int  # user index
    transport: str
    text: str
    resend_transport: str | None  # deliberately sent again after it was confirmed


def send_plans(options: SoakOptions, chats: list[ChatPlan]) -> Iterator[SendPlan]:
    rng = options.rng("sends")
    privates = [chat for chat in chats if chat.kind == "private"]
    groups = [chat for chat in chats if chat.kind == "group"]
    number = 0
    while True:
        pool = groups if rng.random() < options.group_share else privates
        chat = rng.choice(pool)
        client_msg_id = f"soak-{options.seed}-{number}"
        filler = "x" * rng.randint(*TEXT_LENGTH)
        resend = rng.choice(TRANSPORTS) if rng.random() < options.resend_share else None
        yield SendPlan(
            number=number,
            client_msg_id=client_msg_id,
            chat=chat.index,
            sender=rng.choice(chat.members),
            transport=rng.choice(TRANSPORTS),
            text=f"soak|{client_msg_id}|{filler}",
            resend_transport=resend,
        )
        number += 1
