"""The WebSocket protocol: frames clients send, and the server frames that are not chat events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from core.events import encode_frame

# Close codes (4000-4999 are the application's).
CLOSE_UNAUTHORIZED = 4001
CLOSE_TOKEN_EXPIRED = 4002  # the access token expired: refresh it, reconnect and resume
CLOSE_SESSION_ENDED = 4003  # logout, logout-all, a reused refresh token or a ban: sign in again
CLOSE_TOO_SLOW = 4008  # "reconnect and resume": the socket fell too far behind
CLOSE_GOING_AWAY = 1001


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AuthFrame(_Frame):
    type: Literal["auth"]
    init_data: str | None = None
    token: str | None = None


class PingFrame(_Frame):
    type: Literal["ping"]


class TypingFrame(_Frame):
    type: Literal["typing"]
    chat_id: int
    is_typing: bool = True


class JoinChatFrame(_Frame):
    type: Literal["join_chat"]
    chat_id: int


class LeaveChatFrame(_Frame):
    type: Literal["leave_chat"]
    chat_id: int


class ReadFrame(_Frame):
    type: Literal["read"]
    chat_id: int
    message_id: int


class SendMessageFrame(_Frame):
    type: Literal["send_message"]
    chat_id: int
    text: str = Field(max_length=8192)
    client_msg_id: str = Field(min_length=1, max_length=64)
    reply_to_message_id: int | None = None


class ResumeFrame(_Frame):
    type: Literal["resume"]
    chats: dict[int, Annotated[int, Field(ge=0)]] = Field(max_length=1000)


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


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_client_frame(text: str) -> ClientFrame:
    try:
        return _client_frame.validate_json(text)
    except ValidationError as exc:
        kinds = {error["type"] for error in exc.errors()}
        if "json_invalid" in kinds or "model_type" in kinds:
            raise FrameError("malformed_frame", "Frames are JSON objects") from None
        if kinds & {"union_tag_invalid", "union_tag_not_found"}:
            raise FrameError("unknown_type", "Unknown frame type") from None
        raise FrameError("invalid_frame", _first_error(exc)) from None


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


def error_frame(code: str, message: str, **fields: Any) -> str:
    return frame("error", code=code, message=message, **fields)
