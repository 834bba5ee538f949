"""The WebSocket door at /ws: authenticate, then read client frames and call the services.

A plain ASGI endpoint, served ahead of FastAPI's routing and middleware (see `MessengerApi`):
thousands of idle sockets each keep alive only what this module and the socket's `Connection`
hold, not a request's worth of middleware frames.

No database session lives as long as the socket: each frame that needs the database opens its
own short unit of work.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from core.db import read_session, unit_of_work
from core.errors import AppError, ServiceUnavailable, Unauthorized
from services import conversation, messages
from services.access import chat_not_found, chats_of_member, require_membership
from services.auth import (
    Identity,
    authenticate_access_token,
    authenticate_init_data,
    signed_in_user,
    still_signed_in,
)
from services.messages import MessageDraft
from webapp_api.context import AppContext
from ws.connection import Connection
from ws.protocol import (
    CLOSE_SESSION_ENDED,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    AuthFrame,
    ClientFrame,
    JoinChatFrame,
    LeaveChatFrame,
    PingFrame,
    ReadFrame,
    ResumeFrame,
    SendMessageFrame,
    TypingFrame,
    connection_established,
    error_frame,
    frame,
    parse_client_frame,
)

logger = logging.getLogger(__name__)


async def websocket_endpoint(
    context: AppContext, scope: Scope, receive: Receive, send: Send
) -> None:
    opened = await _open(context, scope, receive, send)
    if opened is None:
        return
    connection, identity = opened
    try:
        await _read_frames(receive, context, connection, identity)
    finally:
        await context.hub.unregister(connection)


async def _open(
    context: AppContext, scope: Scope, receive: Receive, send: Send
) -> tuple[Connection, Identity] | None:
    """An authenticated socket, registered with the hub, that closes when its credentials end,
    and who it signed in as."""
    identity = await _accept(context, scope, receive, send)
    if identity is None:
        return None
    # The handshake's headers and query string (initData) are done with, but uvicorn keeps
    # this scope for the socket's life.
    scope["headers"] = []
    scope["query_string"] = b""
    user_id = identity.user.id
    connection = context.hub.new_connection(send, user_id)
    connection.send(connection_established(user_id))
    await context.hub.register(connection)
    context.hub.watch_credentials(
        connection, session_id=identity.session_id, expires_at=identity.expires_at
    )
    # A revocation committed after the credentials were checked but published before the hub
    # watched this socket did not reach it: look once more, now that any later one will. While
    # this process still remembers the credential, none has reached it since the check.
    signed_in = context.auth.cache.holds(identity.credential)
    if not signed_in:
        try:
            async with read_session(context.sessionmaker) as session:
                signed_in = await still_signed_in(session, user_id, identity.session_id)
        except ServiceUnavailable as error:
            await context.hub.unregister(connection)
            await _try_again_later(send, error)
            return None
    if not signed_in:
        await context.hub.unregister(connection)  # its writer stops: the close frame is last
        await send({"type": "websocket.close", "code": CLOSE_SESSION_ENDED})
        return None
    return connection, identity


async def _accept(
    context: AppContext, scope: Scope, receive: Receive, send: Send
) -> Identity | None:
    """Auth by `?init_data=`, `?token=`, or a first `auth` frame within 10 seconds: who the
    socket is for once it is open, None if it was refused or closed."""
    if (await receive())["type"] != "websocket.connect":
        return None
    query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
    init_data, token = query.get("init_data"), query.get("token")
    if not (init_data or token):
        await send({"type": "websocket.accept"})
        return await _authenticate_by_first_frame(context, receive, send)
    try:
        identity = await _authenticate(context, init_data, token)
    except ServiceUnavailable as error:
        await send({"type": "websocket.accept"})
        await _try_again_later(send, error)
        return None
    except AppError:
        # Before accept: the handshake is refused (HTTP 403).
        await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED})
        return None
    await send({"type": "websocket.accept"})
    return identity


async def _authenticate(context: AppContext, init_data: str | None, token: str | None) -> Identity:
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        if token:
            return await authenticate_access_token(session, context.auth, token)
        if init_data:
            return await authenticate_init_data(session, context.auth, init_data)
    raise Unauthorized("Send init_data or token", code="init_data_missing")


async def _authenticate_by_first_frame(
    context: AppContext, receive: Receive, send: Send
) -> Identity | None:
    try:
        message = await asyncio.wait_for(receive(), context.settings.ws_auth_timeout)
        if message["type"] == "websocket.disconnect":
            return None
        auth = parse_client_frame(message["text"])  # KeyError: a binary frame
        if not isinstance(auth, AuthFrame):
            raise Unauthorized("The first frame must be auth", code="auth_required")
        return await _authenticate(context, auth.init_data, auth.token)
    except ServiceUnavailable as error:
        await _try_again_later(send, error)
        return None
    except (TimeoutError, AppError, KeyError):
        await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED})
        return None


async def _try_again_later(send: Send, error: ServiceUnavailable) -> None:
    """The database could not sign the socket in: say when to come back (`retry_after`), and
    close with 1013 (try again later), not as if the credentials were bad."""
    await send({"type": "websocket.send", "text": error_frame(error)})
    await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})


async def _read_frames(
    receive: Receive, context: AppContext, connection: Connection, identity: Identity
) -> None:
    while connection.close_code is None:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
        client_frame: ClientFrame | None = None
        try:
            client_frame = parse_client_frame(text)
            await _handle(client_frame, context, connection, identity)
        except AppError as error:
            connection.send(error_frame(error, client_frame))


async def _handle(
    client_frame: ClientFrame, context: AppContext, connection: Connection, identity: Identity
) -> None:
    user_id = connection.user_id
    match client_frame:
        case PingFrame():
            connection.send(frame("pong"))
        case SendMessageFrame():
            await _send_message(client_frame, context, connection, identity)
        case TypingFrame(chat_id=chat_id, is_typing=is_typing):
            async with read_session(context.sessionmaker) as session:
                await require_membership(session, chat_id, user_id)
            await context.hub.typing(user_id, chat_id, is_typing)
        case JoinChatFrame(chat_id=chat_id):
            async with read_session(context.sessionmaker) as session:
                await require_membership(session, chat_id, user_id)
            connection.join_chat(chat_id)
        case LeaveChatFrame(chat_id=chat_id):
            connection.leave_chat(chat_id)
        case ReadFrame(chat_id=chat_id, message_id=message_id):
            async with unit_of_work(context.sessionmaker, context.broker) as session:
                user = await signed_in_user(session, context.auth, identity)
                await messages.mark_read(session, user, chat_id, message_id)
        case ResumeFrame(chats=chats):
            await _resume(chats, context, connection)
        case AuthFrame():
            raise AppError("Already authenticated", code="already_authenticated")


async def _resume(chats: dict[int, int], context: AppContext, connection: Connection) -> None:
    """Replays each chat's missed events in order, then the chat continues live. Every chat is
    held at once, before the first query, so none meets a live event with a stale position.
    `resumed` reports the last seq of each chat this socket has passed on before it."""
    connection.resume(chats)
    async with read_session(context.sessionmaker) as session:
        member_of = await chats_of_member(session, connection.user_id, chats.keys())
    for chat_id in chats:
        if chat_id not in member_of:
            connection.forget(chat_id)
            connection.send(error_frame(chat_not_found(chat_id=chat_id)))
    resumed = [chat_id for chat_id in chats if chat_id in member_of]
    for chat_id in resumed:
        await context.hub.replay(connection, chat_id)
    positions = {chat_id: connection.position(chat_id) for chat_id in resumed}
    connection.send(
        frame(
            "resumed",
            chats={str(chat_id): seq for chat_id, seq in positions.items() if seq is not None},
        )
    )


async def _send_message(
    client_frame: SendMessageFrame, context: AppContext, connection: Connection, identity: Identity
) -> None:
    draft = MessageDraft(
        text=client_frame.text,
        reply_to_message_id=client_frame.reply_to_message_id,
        client_msg_id=client_frame.client_msg_id,
    )
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        user = await signed_in_user(session, context.auth, identity)
        posted = await conversation.post_message(
            session,
            user,
            client_frame.chat_id,
            draft,
            ai=context.ai,
            limits=context.limits,
        )
    connection.send(
        frame(
            "ack",
            client_msg_id=client_frame.client_msg_id,
            message_id=posted.sent.view.id,
            seq=posted.sent.view.seq,
            chat_id=posted.sent.view.chat_id,
        )
    )
