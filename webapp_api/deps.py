"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import session_scope
from webapp_api.context import AppContext


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; it commits before the response is sent."""
    async with session_scope(context.sessionmaker) as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
