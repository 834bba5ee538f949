"""The per-user abuse limits (`services.limits`) as route dependencies (a route that declares
one documents its 429 with `errors(429)`). The send limit is not one: `services.conversation`
takes it, for every door that posts."""

from __future__ import annotations

from fastapi import Depends

from webapp_api.deps import Context, CurrentUser


async def _invite_allowed(user: CurrentUser, context: Context) -> None:
    await context.limits.check_invites(user.id)


INVITE_LIMIT = Depends(_invite_allowed)
