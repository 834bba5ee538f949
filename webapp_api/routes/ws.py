"""The WebSocket door at /ws: authenticate, then read client frames and call the services.

No database session lives as long as the socket: each frame that needs the database opens its
own short unit of work.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from core.db import session_scope
from core.errors import AppError, Unauthorized
from services import messages, users
from services.access import find_membership, require_membership
from services.auth import authenticate_access_token, authenticate_init_data
from webapp_api.context import AppContext
from ws.connection import Connection
from ws.protocol import (
    CLOSE_UNAUTHORIZED,
    AuthFrame,
    ClientFrame,
    FrameError,
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

router = APIRouter()


async def _authenticate(context: AppContext, init_data: str | None, token: str | None) -> int:
    async with session_scope(context.sessionmaker, context.broker) as session:
        if token:
            return (await authenticate_access_token(session, context.auth, token)).user.id
        if init_data:
            return (await authenticate_init_data(session, context.auth, init_data)).id
    raise Unauthorized("Send init_data or token", code="init_data_missing")


async def _authenticate_by_first_frame(websocket: WebSocket, context: AppContext) -> int | None:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), context.settings.ws_auth_timeout)
        auth = parse_client_frame(text)
        if not isinstance(auth, AuthFrame):
            raise Unauthorized("The first frame must be auth", code="auth_required")
        return await _authenticate(context, auth.init_data, auth.token)
    except WebSocketDisconnect:
        return None
    except (TimeoutError, FrameError, AppError, KeyError):
        await websocket.close(CLOSE_UNAUTHORIZED)
        return None


@router.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket, init_data: str | None = None, token: str | None = None
) -> None:
    """Auth by `?init_data=`, `?token=`, or a first `auth` frame within 10 seconds."""
    context: AppContext = websocket.app.state.context
    if init_data or token:
        try:
            user_id = await _authenticate(context, init_data, token)
        except AppError:
            await websocket.close(CLOSE_UNAUTHORIZED)  # before accept: the handshake is refused
            return
        await websocket.accept()
    else:
        await websocket.accept()
        found = await _authenticate_by_first_frame(websocket, context)
        if found is None:
            return
        user_id = found
    connection = context.hub.new_connection(websocket, user_id)
    connection.send(connection_established(user_id))
    await context.hub.register(connection)
    try:
        await _read_frames(websocket, context, connection)
    finally:
        await context.hub.unregister(connection)


async def _read_frames(websocket: WebSocket, context: AppContext, connection: Connection) -> None:
    while connection.close_code is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
        try:
            await _handle(parse_client_frame(text), context, connection)
        except FrameError as exc:
            connection.send(error_frame(exc.code, exc.message))


async def _handle(client_frame: ClientFrame, context: AppContext, connection: Connection) -> None:
    match client_frame:
        case PingFrame():
            connection.send(frame("pong"))
        case SendMessageFrame():
            await _send_message(client_frame, context, connection)
        case _:
            try:
                await _handle_chat_frame(client_frame, context, connection)
            except AppError as exc:
                chat_id = getattr(client_frame, "chat_id", None)
                connection.send(error_frame(exc.code, exc.message, chat_id=chat_id))


async def _handle_chat_frame(
    client_frame: ClientFrame, context: AppContext, connection: Connection
) -> None:
    user_id = connection.user_id
    match client_frame:
        case TypingFrame(chat_id=chat_id, is_typing=is_typing):
            async with context.sessionmaker() as session:
                await require_membership(session, chat_id, user_id)
            await context.hub.typing(user_id, chat_id, is_typing)
        case JoinChatFrame(chat_id=chat_id):
            async with context.sessionmaker() as session:
                await require_membership(session, chat_id, user_id)
            connection.join_chat(chat_id)
        case LeaveChatFrame(chat_id=chat_id):
            connection.leave_chat(chat_id)
        case ReadFrame(chat_id=chat_id, message_id=message_id):
            async with session_scope(context.sessionmaker, context.broker) as session:
                user = await users.get_user(session, user_id)
                await messages.mark_read(session, user, chat_id, message_id)
        case ResumeFrame(chats=chats):
            await _resume(chats, context, connection)
        case AuthFrame():
            raise AppError("Already authenticated", code="already_authenticated")


async def _resume(chats: dict[int, int], context: AppContext, connection: Connection) -> None:
    """Replays each chat's missed events in order, then the chat continues live."""
    resumed: dict[str, int] = {}
    for chat_id, last_seq in chats.items():
        async with context.sessionmaker() as session:
            membership = await find_membership(session, chat_id, connection.user_id)
        if membership is None:
            connection.send(error_frame("chat_not_found", "Chat not found", chat_id=chat_id))
            continue
        await context.hub.replay(connection, chat_id, last_seq)
        resumed[str(chat_id)] = membership.chat.last_seq
    connection.send(frame("resumed", chats=resumed))


async def _send_message(
    client_frame: SendMessageFrame, context: AppContext, connection: Connection
) -> None:
    try:
        async with session_scope(context.sessionmaker, context.broker) as session:
            user = await users.get_user(session, connection.user_id)
            sent = await messages.send_message(
                session,
                user,
                client_frame.chat_id,
                text=client_frame.text,
                reply_to_message_id=client_frame.reply_to_message_id,
                client_msg_id=client_frame.client_msg_id,
                ai=context.ai.runtime if context.ai else None,
            )
    except AppError as exc:
        connection.send(
            error_frame(exc.code, exc.message, client_msg_id=client_frame.client_msg_id)
        )
        return
    connection.send(
        frame(
            "ack",
            client_msg_id=client_frame.client_msg_id,
            message_id=sent.message.id,
            seq=sent.message.seq,
            chat_id=sent.message.chat_id,
        )
    )
