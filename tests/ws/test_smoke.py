from __future__ import annotations

import httpx

from tests.support.api import sign_up
from tests.support.server import LiveServer
from tests.support.ws import ws_user


async def test_new_message_reaches_the_other_member(
    client: httpx.AsyncClient, server: LiveServer
) -> None:
    alice = await sign_up(client, 1, "Alice", "alice")
    bob = await sign_up(client, 2, "Bob", "bob")
    chat = await alice.private_chat_with(bob)
    async with ws_user(server, 2, "Bob", username="bob") as bob_ws:
        sent = await alice.send(chat["id"], "hi bob")
        frame = await bob_ws.wait_for("new_message")
        assert frame["message"]["id"] == sent["id"]
        assert frame["chat_id"] == chat["id"]
        await bob_ws.send(type="send_message", chat_id=chat["id"], text="hi", client_msg_id="c1")
        ack = await bob_ws.wait_for("ack")
        assert ack["client_msg_id"] == "c1"
