"""Administrators' actions on users (ADMIN_TELEGRAM_IDS): ban and unban."""

from __future__ import annotations

from fastapi import APIRouter

from core.bounds import Id
from services import auth, users
from services.access import require_admin
from webapp_api.deps import CurrentUser, Session
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=errors(401))


@router.post("/users/{user_id}/ban", responses=errors(403, 404, 422))
async def ban_user(user_id: Id, user: CurrentUser, session: Session) -> dict[str, bool]:
    """Ends every session of the user and closes their sockets on every process (4003);
    signing in is refused (`403 user_banned`) until unbanned. The AI cannot be banned (422)."""
    require_admin(user)
    await auth.ban_user(session, await users.get_user(session, user_id))
    return {"ok": True}


@router.post("/users/{user_id}/unban", responses=errors(403, 404, 422))
async def unban_user(user_id: Id, user: CurrentUser, session: Session) -> dict[str, bool]:
    require_admin(user)
    await auth.unban_user(session, await users.get_user(session, user_id))
    return {"ok": True}
