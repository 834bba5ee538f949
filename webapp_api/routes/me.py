from __future__ import annotations

from fastapi import APIRouter

from services import users
from webapp_api.deps import CurrentUser, Session
from webapp_api.schemas.errors import errors
from webapp_api.schemas.users import Me, MeUpdate

router = APIRouter(prefix="/api/v1", tags=["me"], responses=errors(401))


@router.get("/me", response_model=Me)
async def get_me(user: CurrentUser) -> Me:
    return Me.of(user)


@router.patch("/me", response_model=Me, responses=errors(400, 422))
async def update_me(body: MeUpdate, user: CurrentUser, session: Session) -> Me:
    await users.update_profile(session, user, **body.model_dump(exclude_unset=True))
    return Me.of(user)
