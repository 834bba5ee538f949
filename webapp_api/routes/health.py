from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from core import __version__
from core.db import check_database
from webapp_api.deps import Context

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    database: Literal["connected", "disconnected"]
    version: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    database: bool
    redis: bool | None


@router.get(
    "/api/v1/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be reached"}},
)
async def health(context: Context) -> JSONResponse:
    database_ok = await check_database(context.engine)
    body = Health(
        status="healthy" if database_ok else "unhealthy",
        database="connected" if database_ok else "disconnected",
        version=__version__,
    )
    return JSONResponse(body.model_dump(), status_code=200 if database_ok else 503)


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The database or Redis cannot be reached"}},
)
async def ready(context: Context) -> JSONResponse:
    database_ok = await check_database(context.engine)
    redis_ok = await context.broker.ping() if context.settings.redis_target else None
    is_ready = database_ok and redis_ok is not False
    body = Readiness(
        status="ready" if is_ready else "not_ready", database=database_ok, redis=redis_ok
    )
    return JSONResponse(body.model_dump(), status_code=200 if is_ready else 503)
