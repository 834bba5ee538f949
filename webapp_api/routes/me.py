from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services import users
from services.chats import invitations
from services.views.users import Me
from webapp_api.conditional import NOT_MODIFIED, etag, mark, not_modified
from webapp_api.deps import CurrentUser, Session
from webapp_api.schemas.errors import errors
from webapp_api.schemas.users import MeUpdate

router = APIRouter(prefix="/api/v1", tags=["me"], responses=errors(401))


@router.get("/me", response_model=Me, responses=NOT_MODIFIED)
async def get_me(user: CurrentUser, request: Request, response: Response) -> Me | Response:
    """My profile. Conditional: `304` to an `If-None-Match` with the current `ETag`."""
    tag = etag("me", user.id, user.updated_at)
    if (unchanged := not_modified(request, tag)) is not None:
        return unchanged
    mark(response, tag)
    return Me.of(user)


@router.patch("/me", response_model=Me, responses=errors(400, 422))
async def update_me(body: MeUpdate, user: CurrentUser, session: Session) -> Me:
    await users.update_profile(session, user, **body.model_dump(exclude_unset=True))
    return Me.of(user)


@router.post("/users/check-invitations", response_model=Me, tags=["users"])
async def check_invitations(user: CurrentUser, session: Session) -> Me:
    """Joins me to the chats that invited my username; Aeon's client asks every few minutes."""
    await invitations.accept_invitations(session, user)
    return Me.of(user)
