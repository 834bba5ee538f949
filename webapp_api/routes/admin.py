"""Administrators' actions on users (ADMIN_TELEGRAM_IDS): ban and unban."""

from __future__ import annotations

from fastapi import APIRouter

from services import auth, billing, users
from webapp_api.deps import CurrentUser, Session

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post("/users/{user_id}/ban")
async def ban_user(user_id: int, user: CurrentUser, session: Session) -> dict[str, bool]:
    """Ends every session of the user and closes their sockets on every process (4003);
    signing in is refused (`403 user_banned`) until unbanned."""
    billing.require_admin(user)
    await auth.ban_user(session, await users.get_user(session, user_id))
    return {"ok": True}


@router.post("/users/{user_id}/unban")
async def unban_user(user_id: int, user: CurrentUser, session: Session) -> dict[str, bool]:
    billing.require_admin(user)
    await auth.unban_user(session, await users.get_user(session, user_id))
    return {"ok": True}
