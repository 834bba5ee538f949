"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import session_scope
from core.errors import Unauthorized
from models import User
from services.ai import AiRuntime
from services.auth import Identity, authenticate_access_token, authenticate_init_data
from webapp_api.context import AppContext


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; it commits before the response is sent."""
    async with session_scope(context.sessionmaker, context.broker) as session:
        yield session


# scope="function": the session commits when the endpoint returns, before the response is
# sent, so a client never sees a success that was not committed.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_identity(
    context: Context,
    session: Session,
    init_data: Annotated[str | None, Header(alias="X-Telegram-Init-Data")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Identity:
    """Who is calling: a bearer access token, or Telegram initData."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="token_invalid")
        return await authenticate_access_token(session, context.auth, token.strip())
    if init_data is None:
        raise Unauthorized(
            "Send X-Telegram-Init-Data or an Authorization bearer token",
            code="init_data_missing",
        )
    user = await authenticate_init_data(session, context.auth, init_data)
    return Identity(user=user, session_id=None)


CurrentIdentity = Annotated[Identity, Depends(get_identity)]


async def get_current_user(identity: CurrentIdentity) -> User:
    return identity.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_ai(context: Context) -> AiRuntime | None:
    """The AI participant's configuration (None when this server has no bot identity)."""
    return context.ai.runtime if context.ai is not None else None


Ai = Annotated[AiRuntime | None, Depends(get_ai)]
