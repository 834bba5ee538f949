"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from core.db import read_session, unit_of_work
from core.errors import Unauthorized
from models import User
from services.ai.runtime import AiRuntime
from services.auth import Identity, authenticate_access_token, authenticate_init_data
from webapp_api.context import AppContext


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def from_this_machine(connection: HTTPConnection) -> bool:
    """Whether the caller is on this machine: a loopback peer, and no proxy's forwarding header
    (a reverse proxy on the same host would otherwise pass the world off as local)."""
    if any(name in connection.headers for name in ("forwarded", "x-forwarded-for")):
        return False
    try:
        return ipaddress.ip_address(connection.client.host if connection.client else "").is_loopback
    except ValueError:
        return False


async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; it commits before the response is sent."""
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        yield session


# scope="function": the session commits when the endpoint returns, before the response is
# sent, so a client never sees a success that was not committed.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(context: Context) -> AsyncIterator[AsyncSession]:
    """The reads of a route that only reads: on PostgreSQL without BEGIN and COMMIT around them
    (`core.db.read_session`). Such a route takes its caller as `Caller`, identified in a unit
    of work of its own, so that the request never holds two pooled connections at once."""
    async with read_session(context.sessionmaker) as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


class _BearerHeader(HTTPBearer):
    """Publishes the bearer scheme in the OpenAPI document, and hands over any Authorization
    header: a wrong one is refused with our error, not ignored."""

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        authorization = request.headers.get("Authorization")
        if not authorization:
            return None
        scheme, credentials = get_authorization_scheme_param(authorization)
        return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


# Credentials are security schemes, not parameters: API tools (Swagger UI, fuzzers) send the
# ones they are given instead of making up values for them.
InitDataHeader = Annotated[
    str | None,
    Security(
        APIKeyHeader(
            name="X-Telegram-Init-Data",
            scheme_name="TelegramInitData",
            description="The raw `Telegram.WebApp.initData` string.",
            auto_error=False,
        )
    ),
]
BearerHeader = Annotated[
    HTTPAuthorizationCredentials | None,
    Security(
        _BearerHeader(
            scheme_name="BearerToken",
            description="An access token from `POST /api/v1/auth/telegram`.",
            auto_error=False,
        )
    ),
]


async def get_identity(
    context: Context,
    session: Session,
    init_data: InitDataHeader = None,
    authorization: BearerHeader = None,
) -> Identity:
    """Who is calling: a bearer access token, or Telegram initData."""
    if authorization is not None:
        if authorization.scheme.lower() != "bearer" or not authorization.credentials:
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="token_invalid")
        return await authenticate_access_token(
            session, context.auth, authorization.credentials.strip()
        )
    if init_data is None:
        raise Unauthorized(
            "Send X-Telegram-Init-Data or an Authorization bearer token",
            code="init_data_missing",
        )
    return await authenticate_init_data(session, context.auth, init_data)


CurrentIdentity = Annotated[Identity, Depends(get_identity)]


async def get_current_user(identity: CurrentIdentity) -> User:
    return identity.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_ai(context: Context) -> AiRuntime | None:
    """The AI participant's configuration (None when this server has no bot identity)."""
    return context.ai


Ai = Annotated[AiRuntime | None, Depends(get_ai)]


async def get_caller(
    context: Context, init_data: InitDataHeader = None, authorization: BearerHeader = None
) -> User:
    """The caller, authenticated in a unit of work of its own: for routes that must not hold
    the request's transaction open (on SQLite, the write lock) while a file streams or while
    they wait for the model's reply, which could then never be written."""
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        identity = await get_identity(context, session, init_data, authorization)
    return identity.user


Caller = Annotated[User, Depends(get_caller)]
