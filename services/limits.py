"""Abuse limits of the Mini App's doors, per user, Telegram-like: a burst is fine, a flood waits.

Sending (REST and the socket share one bucket), creating chats, and inviting people (invite by
username, invite links, adding members, the members a new group starts with) each have a bucket
per user (`core.ratelimit`: shared by every process through Redis). A refused action changes
nothing and says when to try again (`retry_after`, whole seconds). The send limit is taken by
`services.conversation`, which the doors hand these limits to. The AI participant's messages and
what people write to the bot are never limited; Telegram limits what reaches the bot.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from core.errors import TooManyRequests, Unprocessable
from core.ratelimit import Rate, RateLimiter
from core.settings import Settings


class Action(enum.StrEnum):
    SEND = "send"
    CHAT_CREATE = "chat_create"
    INVITE = "invite"


_REFUSALS = {
    Action.SEND: "You are sending messages too fast",
    Action.CHAT_CREATE: "You are creating chats too fast",
    Action.INVITE: "You are inviting people too fast",
}


@dataclass(frozen=True, slots=True)
class AbuseLimits:
    limiter: RateLimiter
    send: Rate
    chat_create: Rate
    invite: Rate

    @classmethod
    def from_settings(cls, settings: Settings, limiter: RateLimiter) -> AbuseLimits:
        return cls(
            limiter,
            send=Rate(settings.sends_per_minute, 60.0, settings.send_burst),
            chat_create=Rate(settings.chat_creates_per_hour, 3600.0, settings.chat_create_burst),
            invite=Rate(settings.invites_per_hour, 3600.0, settings.invite_burst),
        )

    async def check_send(self, user_id: int) -> None:
        await self._take(Action.SEND, self.send, user_id)

    async def check_chat_create(self, user_id: int) -> None:
        await self._take(Action.CHAT_CREATE, self.chat_create, user_id)

    async def check_invites(self, user_id: int, count: int = 1) -> None:
        """`count` people invited or added at once (a new group's members)."""
        if count > self.invite.burst:
            raise Unprocessable(
                f"At most {self.invite.burst} people can be invited at once",
                code="too_many_invites",
            )
        if count > 0:
            await self._take(Action.INVITE, self.invite, user_id, count)

    async def _take(self, action: Action, rate: Rate, user_id: int, cost: int = 1) -> None:
        wait = await self.limiter.take(f"{action}:{user_id}", rate, cost)
        if wait > 0:
            raise TooManyRequests(
                _REFUSALS[action],
                code=f"{action}_rate_limited",
                retry_after=max(1, math.ceil(wait)),
            )
