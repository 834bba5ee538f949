"""`GET /metrics` for Prometheus. With METRICS_TOKEN set, scrapes must bring it as a bearer
token; without it the route answers only on this machine (loopback, not through a proxy), so
that a deployment which forgot the setting does not publish its numbers."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from core.errors import NotFound, Unauthorized
from webapp_api.deps import Context, from_this_machine
from webapp_api.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(context: Context, request: Request) -> Response:
    token = context.settings.metrics_token
    if token is None:
        if not from_this_machine(request):
            raise NotFound("Not found", code="not_found")
    else:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.encode(), token.get_secret_value().encode()
        ):
            raise Unauthorized(
                "Send Authorization: Bearer <METRICS_TOKEN>", code="metrics_token_invalid"
            )
    return Response(exposition(context.broker, context.hub), media_type=CONTENT_TYPE_PLAIN_0_0_4)
