"""Socket frames are held to the same bounds as HTTP (core.bounds): a frame with an id the
database could not hold, or a boolean for an integer, gets an `error` frame with a code, and the
socket stays open and keeps working."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import sign_up
from tests.support.server import LiveServer
from tests.support.ws import ws_user

HUGE = 1180591620717411303424  # 2**70: the frame


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "send_message", "chat_id": HUGE, "text": "x", "client_msg_id": "x"},
        {
            "type": "send_message",
            "chat_id": "{chat}",
            "text": "x",
            "client_msg_id": "x",
            "reply_to_message_id": 2**63,
        },
        {"type": "send_message", "chat_id": True, "text": "x", "client_msg_id": "x"},
        {"type": "typing", "chat_id": -(2**63) - 1},
        {"type": "typing", "chat_id": "{chat}", "is_typing": 1},
        {"type": "join_chat", "chat_id": 2**64},
        {"type": "leave_chat", "chat_id": 0},
        {"type": "read", "chat_id": "{chat}", "message_id": 2**63},
        {"type": "read", "chat_id": "{chat}", "message_id": True},
        {"type": "resume", "chats": {str(HUGE): 0}},
        {"type": "resume", "chats": {"{chat}": 2**63}},
        {"type": "resume", "chats": {"{chat}": -1}},
        {"type": "resume", "chats": {"{chat}": True}},
        {"type": "send_message", "chat_id": "{chat}", "text": "a\u0000b", "client_msg_id": "x"},
    ],
)
async def test_an_out_of_range_frame_gets_an_error_and_the_socket_keeps_working(
    client: httpx.AsyncClient, server: LiveServer, frame: dict[str, Any]
) -> None:
    alice = await sign_up(client, 1101, "Alice", "alice")
    chat = await alice.create_group("Team")

    def filled(value: Any) -> Any:
        if value == "{chat}":
            return chat["id"]
        if isinstance(value, dict):
            return {filled(key): val for key, val in value.items()}
        return value

    sent = {key: filled(value) for key, value in frame.items()}
    if "chats" in sent:
        sent["chats"] = {str(key): filled(value) for key, value in sent["chats"].items()}
    async with ws_user(server, 1101, "Alice", username="alice") as ws:
        await ws.send(**sent)
        error = await ws.wait_for("error")
        assert error["code"] == "invalid_frame", error
        if frame["type"] == "send_message":
            assert error["client_msg_id"] == "x"
        # Still open, and the next valid frame works.
        await ws.send(type="send_message", chat_id=chat["id"], text="still here", client_msg_id="y")
        ack = await ws.wait_for("ack")
        assert (ack["client_msg_id"], ack["chat_id"]) == ("y", chat["id"])
    history = await alice.ok("GET", f"/api/v1/chats/{chat['id']}/messages")
    assert [message["text"] for message in history["messages"]] == ["still here"]
