"""The per-user abuse limits (`services.limits`) as route dependencies (a route that declares
one documents its 429 with `errors(429)`)."""

from __future__ import annotations

from fastapi import Depends

from webapp_api.deps import Context, CurrentUser


async def _send_allowed(user: CurrentUser, context: Context) -> None:
    await context.limits.check_send(user.id)


async def _invite_allowed(user: CurrentUser, context: Context) -> None:
    await context.limits.check_invites(user.id)


SEND_LIMIT = Depends(_send_allowed)
INVITE_LIMIT = Depends(_invite_allowed)
