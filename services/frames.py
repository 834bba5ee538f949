"""The socket frames that are not chat events: what they are called and which keys they carry.

Chat events (`new_message`, ...) are built by `services.events.record_event`; the socket's own
replies (`ack`, `error`, `pong`, ...) by `ws.protocol`. Everything else a client is told comes
from here, so that each frame has one shape wherever it is sent from. README's "WebSocket
protocol" lists the keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Frame = dict[str, Any]


def ai_reply_started(
    reply_id: int, chat_id: int, *, reply_to_message_id: int | None, model: str
) -> Frame:
    return {
        "type": "ai_reply_started",
        "reply_id": reply_id,
        "chat_id": chat_id,
        "reply_to_message_id": reply_to_message_id,
        "model": model,
    }


def ai_reply_delta(reply_id: int, chat_id: int, *, text: str, offset: int) -> Frame:
    """`offset`: how many characters of the reply came before `text`."""
    return {
        "type": "ai_reply_delta",
        "reply_id": reply_id,
        "chat_id": chat_id,
        "text": text,
        "offset": offset,
    }


def ai_reply_tool(
    reply_id: int,
    chat_id: int,
    *,
    tool: str,
    call_id: str,
    status: str,
    message_id: int | None = None,
) -> Frame:
    """A tool step of a reply: `status` "started", "finished" or "failed"; `message_id` the
    message it posted (a drawn image)."""
    return {
        "type": "ai_reply_tool",
        "reply_id": reply_id,
        "chat_id": chat_id,
        "tool": tool,
        "call_id": call_id,
        "status": status,
        "message_id": message_id,
    }


def ai_reply_done(
    reply_id: int, chat_id: int, *, message_ids: list[int], incomplete: bool
) -> Frame:
    """`message_id` is the first of `message_ids` (a long reply is several messages)."""
    return {
        "type": "ai_reply_done",
        "reply_id": reply_id,
        "chat_id": chat_id,
        "message_id": message_ids[0] if message_ids else None,
        "message_ids": message_ids,
        "incomplete": incomplete,
    }


def ai_reply_failed(
    reply_id: int | None,
    chat_id: int,
    *,
    reply_to_message_id: int | None,
    code: str,
    message: str,
) -> Frame:
    """A reply that failed, or (`reply_id` None) the AI's refusal to answer a group message:
    the message stands, `reply_to_message_id` names it."""
    return {
        "type": "ai_reply_failed",
        "reply_id": reply_id,
        "chat_id": chat_id,
        "reply_to_message_id": reply_to_message_id,
        "code": code,
        "message": message,
    }


def ai_voice_failed(reply_id: int, chat_id: int, *, code: str, message: str) -> Frame:
    """The AI could not speak its answer (the chat wants voice replies); the text stands."""
    return {
        "type": "ai_voice_failed",
        "reply_id": reply_id,
        "chat_id": chat_id,
        "code": code,
        "message": message,
    }


def knowledge_progress(
    assistant_id: int,
    document_id: int,
    *,
    status: str,
    chunks: int,
    embedded_chunks: int,
    error: str | None,
) -> Frame:
    """A document of the owner's assistant is being processed: `embedded_chunks` of `chunks`
    done; `status` ends as ready or failed (with `error`)."""
    return {
        "type": "knowledge_progress",
        "assistant_id": assistant_id,
        "document_id": document_id,
        "status": status,
        "chunks": chunks,
        "embedded_chunks": embedded_chunks,
        "error": error,
    }


def user_status(user_id: int, *, is_online: bool, last_seen_at: datetime) -> Frame:
    return {
        "type": "user_status",
        "user_id": user_id,
        "is_online": is_online,
        "last_seen_at": last_seen_at.isoformat(),
    }


def balance_changed(balance: int, *, available: int) -> Frame:
    """Micro-credits: the balance, and what of it replies being written do not hold."""
    return {
        "type": "balance_changed",
        "balance": balance,
        "available": available,
        "currency": "credits",
    }


def typing(chat_id: int, user_id: int, *, is_typing: bool, expires_in: float) -> Frame:
    """`expires_in`: seconds until the typing state ends by itself (0 when it ended)."""
    return {
        "type": "typing",
        "chat_id": chat_id,
        "user_id": user_id,
        "is_typing": is_typing,
        "expires_in": expires_in,
    }
