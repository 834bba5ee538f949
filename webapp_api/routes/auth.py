"""Session tokens in exchange for Telegram initData; refresh rotation; logout."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from core.errors import Unauthorized
from services import auth
from services.views.users import Me
from webapp_api.deps import Context, CurrentIdentity, Session
from webapp_api.errors import error_body
from webapp_api.schemas.errors import errors
from webapp_api.schemas.users import RefreshRequest, TelegramSignIn, TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def _token_pair(issued: auth.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user=Me.of(issued.user),
    )


@router.post("/telegram", response_model=TokenPair, responses=errors(400, 401, 422))
async def sign_in_with_telegram(
    body: TelegramSignIn, context: Context, session: Session
) -> TokenPair:
    identity = await auth.authenticate_init_data(session, context.auth, body.init_data)
    return _token_pair(await auth.start_session(session, context.auth, identity.user))


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=errors(400, 401, 422),
)
async def refresh(
    body: RefreshRequest, context: Context, session: Session
) -> TokenPair | JSONResponse:
    result = await auth.refresh_session(session, context.auth, body.refresh_token)
    if isinstance(result, auth.RefreshRejected):
        # Answered, not raised: a revoked family must be committed with this unit of work.
        return JSONResponse(error_body(401, result.message, result.code), status_code=401)
    return _token_pair(result)


@router.post("/logout", responses=errors(401))
async def logout(identity: CurrentIdentity, session: Session) -> dict[str, bool]:
    if identity.session_id is None:
        raise Unauthorized("Log out with the session's access token", code="token_required")
    await auth.revoke_session(session, identity.session_id)
    return {"ok": True}


@router.post("/logout-all", responses=errors(401))
async def logout_all(identity: CurrentIdentity, session: Session) -> dict[str, int]:
    return {"revoked_sessions": await auth.revoke_all_sessions(session, identity.user.id)}
