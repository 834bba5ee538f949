"""The WebSocket protocol: frames clients send, and the server frames that are not chat events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from core.bounds import Flag, Id, Input, Seq
from core.envelope import encode_frame
from core.errors import AppError, BadRequest
from services.messages import CLIENT_MSG_ID_MAX_LENGTH

# Close codes (4000-4999 are the application's).
CLOSE_UNAUTHORIZED = 4001
CLOSE_TOKEN_EXPIRED = 4002  # the access token expired: refresh it, reconnect and resume
CLOSE_SESSION_ENDED = 4003  # logout, logout-all, a reused refresh token or a ban: sign in again
CLOSE_TOO_SLOW = 4008  # "reconnect and resume": the socket fell too far behind
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013  # the database refused: reconnect after the error's retry_after


class _Frame(Input):
    model_config = ConfigDict(extra="ignore")


class AuthFrame(_Frame):
    type: Literal["auth"]
    init_data: str | None = None
    token: str | None = None


class PingFrame(_Frame):
    type: Literal["ping"]


class TypingFrame(_Frame):
    type: Literal["typing"]
    chat_id: Id
    is_typing: Flag = True


class JoinChatFrame(_Frame):
    type: Literal["join_chat"]
    chat_id: Id


class LeaveChatFrame(_Frame):
    type: Literal["leave_chat"]
    chat_id: Id


class ReadFrame(_Frame):
    type: Literal["read"]
    chat_id: Id
    message_id: Id


class SendMessageFrame(_Frame):
    type: Literal["send_message"]
    chat_id: Id
    text: str = Field(max_length=8192)
    client_msg_id: str = Field(min_length=1, max_length=CLIENT_MSG_ID_MAX_LENGTH)
    reply_to_message_id: Id | None = None


class ResumeFrame(_Frame):
    type: Literal["resume"]
    chats: dict[Id, Seq] = Field(max_length=1000)


ClientFrame = Annotated[
    AuthFrame
    | PingFrame
    | TypingFrame
    | JoinChatFrame
    | LeaveChatFrame
    | ReadFrame
    | SendMessageFrame
    | ResumeFrame,
    Field(discriminator="type"),
]
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class FrameError(BadRequest):
    """A frame that is not one of the protocol's; `extra` goes into its error frame."""


def parse_client_frame(text: str) -> ClientFrame:
    try:
        return _client_frame.validate_json(text)
    except ValidationError as exc:
        kinds = {error["type"] for error in exc.errors()}
        if "json_invalid" in kinds or "model_type" in kinds:
            raise FrameError("Frames are JSON objects", code="malformed_frame") from None
        if kinds & {"union_tag_invalid", "union_tag_not_found"}:
            raise FrameError("Unknown frame type", code="unknown_type") from None
        raise FrameError(_first_error(exc), code="invalid_frame", **_client_msg_id(text)) from None


def _client_msg_id(text: str) -> dict[str, str]:
    """A refused send_message's `client_msg_id`, for its error frame: the client is waiting for
    an answer with it."""
    parsed = json.loads(text)
    value = parsed.get("client_msg_id")
    if isinstance(value, str) and 0 < len(value) <= CLIENT_MSG_ID_MAX_LENGTH:
        return {"client_msg_id": value}
    return {}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"][1:])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def frame(type_: str, **fields: Any) -> str:
    return encode_frame({"type": type_, **fields}).decode()


def connection_established(user_id: int) -> str:
    return frame(
        "connection_established", user_id=user_id, server_time=datetime.now(UTC).isoformat()
    )


def error_frame(error: AppError, client_frame: ClientFrame | None = None) -> str:
    """The socket's one rendering of a refusal: its code and message, what it carries, and the
    ids of the frame it answers (`chat_id`, `client_msg_id`) so the client knows which."""
    answers = {
        name: getattr(client_frame, name)
        for name in ("chat_id", "client_msg_id")
        if getattr(client_frame, name, None) is not None
    }
    return frame("error", code=error.code, message=error.message, **error.extra, **answers)
