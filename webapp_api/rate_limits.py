"""The per-user abuse limits (`services.limits`) as route dependencies, and how a refusal
looks in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import Depends

from webapp_api.deps import Context, CurrentUser


async def _send_allowed(user: CurrentUser, context: Context) -> None:
    await context.limits.check_send(user.id)


async def _invite_allowed(user: CurrentUser, context: Context) -> None:
    await context.limits.check_invites(user.id)


SEND_LIMIT = Depends(_send_allowed)
INVITE_LIMIT = Depends(_invite_allowed)

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too fast: `retry_after` (also the `Retry-After` header) says how many "
        "seconds to wait",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    }
}
