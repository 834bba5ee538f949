"""Pure ASGI middlewares (no per-request task or body buffering)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_of(scope: Scope) -> str:
    """A sane `X-Request-ID` from the client, or a new one."""
    incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
    return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes a sane `X-Request-ID` from the client or makes one; logs and responses carry it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = request_id_var.set(request_id)
        # A socket's frames carry no headers: its `send` goes on unwrapped, so that nothing
        # more is kept alive for each of thousands of idle sockets.
        wrapped = send if scope["type"] == "websocket" else _with_request_id(send, request_id)
        try:
            await self.app(scope, receive, wrapped)
        finally:
            request_id_var.reset(token)


def _with_request_id(send: Send, request_id: str) -> Send:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
        await send(message)

    return send_with_id


class StripTrailingSlashMiddleware:
    """`/api/v1/chats/` and `/api/v1/chats` are the same route, served without a redirect
    (a redirect drops the auth header in some clients)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/") or "/"
            raw_path = scope.get("raw_path")
            if isinstance(raw_path, bytes):
                scope["raw_path"] = raw_path.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


SECURITY_HEADERS = (
    # Browsers never guess a type other than the declared one (JSON is never run as script).
    (b"x-content-type-options", b"nosniff"),
    # URLs with tokens or signed media links never leak to another site in a Referer.
    (b"referrer-policy", b"no-referrer"),
)


def with_security_headers(send: Send) -> Send:
    """`send`, adding SECURITY_HEADERS to the answer (unless the route set its own value)."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend(item for item in SECURITY_HEADERS if item[0] not in present)
            message["headers"] = headers
        await send(message)

    return send_with_headers
