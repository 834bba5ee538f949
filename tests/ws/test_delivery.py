"""Chat events reach every member socket, in order, once; resume fills what was missed."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed

from tests.conftest import make_settings
from tests.media.samples import png_bytes
from tests.support.api import ApiUser, sign_up
from tests.support.server import LiveServer, live_server, wait_until
from tests.support.ws import Frame, WsClient, new_message, ws_connect, ws_url_for, ws_user
from webapp_api.app import create_app


async def _chat_frames(ws: WsClient, chat_id: int, until_seq: int) -> list[Frame]:
    """This chat's event frames up to `until_seq`, skipping anything else."""
    frames: list[Frame] = []

    async def gather() -> None:
        while not frames or frames[-1]["seq"] < until_seq:
            frame = await ws.recv()
            if frame.get("chat_id") == chat_id and "seq" in frame:
                frames.append(frame)

    await asyncio.wait_for(gather(), 10)
    return frames


async def _last_seq(user: ApiUser, chat_id: int) -> int:
    seq: int = (await user.ok("GET", f"/api/v1/chats/{chat_id}"))["last_seq"]
    return seq


async def test_every_event_type_reaches_every_member_socket_in_order(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    owner = await sign_up(client, 41, "Olga")
    admin = await sign_up(client, 42, "Adam")
    member = await sign_up(client, 43, "Mia")
    newcomer = await sign_up(client, 44, "Ned")
    group = await owner.create_group("team", admin, member)
    chat_id = group["id"]
    await owner.ok("PATCH", f"/api/v1/chats/{chat_id}/members/{admin.id}", json={"role": "admin"})
    start = await _last_seq(owner, chat_id)
    async with (
        ws_user(server, 41, "Olga") as owner_ws,
        ws_user(server, 42, "Adam") as admin_ws,
        ws_user(server, 43, "Mia") as member_ws,
    ):
        message = await member.send(chat_id, "hello")
        await member.ok("PUT", f"/api/v1/messages/{message['id']}", json={"text": "hello!"})
        await admin.ok("PUT", f"/api/v1/messages/{message['id']}/reaction", json={"emoji": "👍"})
        await admin.ok("POST", f"/api/v1/messages/{message['id']}/pin")
        await owner.ok("POST", f"/api/v1/chats/{chat_id}/read", json={"message_id": message["id"]})
        await admin.ok("DELETE", f"/api/v1/messages/{message['id']}")
        await admin.ok("POST", f"/api/v1/chats/{chat_id}/members/{newcomer.id}")
        await owner.ok(
            "PATCH", f"/api/v1/chats/{chat_id}/members/{member.id}", json={"role": "admin"}
        )
        await owner.ok("PATCH", f"/api/v1/chats/{chat_id}", json={"title": "team 2"})
        await owner.ok("DELETE", f"/api/v1/chats/{chat_id}/members/{newcomer.id}")
        stored = await owner.ok("GET", f"/api/v1/chats/{chat_id}/events?after_seq={start}")
        await owner.ok("DELETE", f"/api/v1/chats/{chat_id}")
        expected = [
            "new_message",
            "message_edited",
            "reaction_changed",
            "message_pinned",
            "message_read",
            "message_deleted",
            "member_added",
            "member_updated",
            "chat_updated",
            "member_removed",
            "chat_deleted",
        ]
        last = start + len(expected)
        for ws in (owner_ws, admin_ws, member_ws):
            frames = await _chat_frames(ws, chat_id, last)
            assert [f["type"] for f in frames] == expected
            assert [f["seq"] for f in frames] == list(range(start + 1, last + 1))
            # Each pushed frame is exactly what the difference endpoint returns.
            assert frames[:-1] == stored["events"]


async def test_a_resume_replays_each_stored_event_as_the_difference_endpoint_returns_it(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    """The replay puts each stored payload into its frame unparsed, unless its media links
    are signed afresh: the frames are the events of the difference endpoint all the same."""
    alice, bob = await sign_up(client, 45, "Ann"), await sign_up(client, 46, "Ben")
    chat_id = (await alice.create_group("téam", bob))["id"]
    photo = await alice.post("/api/v1/media", files={"file": ("a.png", png_bytes(), "image/png")})
    with_photo = await alice.send(chat_id, "📷 «look»", media_ids=[photo.json()["id"]])
    plain = await bob.send(chat_id, 'quoted "media": [{"id": 1}] text')
    await bob.ok("PUT", f"/api/v1/messages/{with_photo['id']}/reaction", json={"emoji": "👍"})
    await bob.ok("POST", f"/api/v1/chats/{chat_id}/read", json={"message_id": plain["id"]})
    await alice.ok("PATCH", f"/api/v1/chats/{chat_id}", json={"title": "tëam 2"})
    stored = await bob.ok("GET", f"/api/v1/chats/{chat_id}/events?after_seq=0")
    last = stored["last_seq"]
    async with ws_user(server, 46, "Ben") as bob_ws:
        await bob_ws.send(type="resume", chats={str(chat_id): 0})
        frames = await _chat_frames(bob_ws, chat_id, last)
    assert frames == stored["events"]
    assert [f["seq"] for f in frames] == list(range(1, last + 1))
    (photo_frame,) = [f for f in frames if f["type"] == "new_message" and f["message"]["media"]]
    assert photo_frame["message"]["media_url"] == photo_frame["message"]["media"][0]["url"]


async def test_message_read_frames_carry_the_aeon_fields(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await sign_up(client, 45, "Al"), await sign_up(client, 46, "Bo")
    chat = await alice.private_chat_with(bob)
    sent = await alice.send(chat["id"], "read me")
    async with ws_user(server, 45, "Al") as alice_ws, ws_user(server, 46, "Bo") as bob_ws:
        await bob_ws.send(type="read", chat_id=chat["id"], message_id=sent["id"])
        read = await alice_ws.wait_for("message_read")
    assert (read["chat_id"], read["message_id"], read["user_id"]) == (
        chat["id"],
        sent["id"],
        bob.id,
    )


async def test_membership_changes_take_effect_on_open_sockets(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    owner, guest = await sign_up(client, 47, "Own"), await sign_up(client, 48, "Gus")
    group = await owner.create_group("club")
    async with ws_user(server, 48, "Gus") as guest_ws:
        await owner.send(group["id"], "before joining")
        await owner.ok("POST", f"/api/v1/chats/{group['id']}/members/{guest.id}")
        added = await guest_ws.wait_for("member_added")
        assert added["user_id"] == guest.id
        sent = await owner.send(group["id"], "welcome")
        assert (await guest_ws.wait_for("new_message"))["message"]["id"] == sent["id"]
        await owner.ok("DELETE", f"/api/v1/chats/{group['id']}/members/{guest.id}")
        removed = await guest_ws.wait_for("member_removed")
        assert removed["user_id"] == guest.id
        await owner.send(group["id"], "after removal")
        # A later event for the guest, in a chat they are still in, follows whatever this one
        # would have brought.
        direct = await owner.private_chat_with(guest)
        later = await owner.send(direct["id"], "still friends?")
        await guest_ws.none_before(
            "new_message", new_message(later["id"]), where=lambda f: f["chat_id"] == group["id"]
        )


async def test_send_message_frames_are_acked_and_idempotent(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await sign_up(client, 49, "Ari"), await sign_up(client, 50, "Bea")
    chat = await alice.private_chat_with(bob)
    async with ws_user(server, 49, "Ari") as alice_ws, ws_user(server, 50, "Bea") as bob_ws:
        frame: dict[str, Any] = {
            "type": "send_message",
            "chat_id": chat["id"],
            "text": "via socket",
            "client_msg_id": "abc-1",
        }
        await alice_ws.send(**frame)
        first = await alice_ws.wait_for("ack")
        await alice_ws.send(**frame)
        second = await alice_ws.wait_for("ack")
        assert first == second
        delivered = await bob_ws.wait_for("new_message")
        assert delivered["message"]["id"] == first["message_id"]
        assert delivered["seq"] == first["seq"]
        later = await alice.send(chat["id"], "and another")
        await bob_ws.none_before("new_message", new_message(later["id"]))
        await alice_ws.send(**{**frame, "client_msg_id": "abc-2", "text": "   "})
        error = await alice_ws.wait_for("error")
        assert (error["client_msg_id"], error["code"]) == ("abc-2", "text_required")


async def test_leave_chat_narrows_and_join_chat_widens_a_socket(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await sign_up(client, 51, "Ada"), await sign_up(client, 52, "Bud")
    chat = await alice.private_chat_with(bob)
    async with ws_user(server, 52, "Bud") as bob_ws:
        await bob_ws.send(type="leave_chat", chat_id=chat["id"])
        await bob_ws.send(type="ping")
        await bob_ws.wait_for("pong")
        await alice.send(chat["id"], "unseen here")
        await bob_ws.send(type="join_chat", chat_id=chat["id"])
        await bob_ws.send(type="ping")
        await bob_ws.wait_for("pong")
        sent = await alice.send(chat["id"], "seen again")
        # The first message the socket passes on since it left: nothing of the time between.
        assert (await bob_ws.wait_for("new_message"))["message"]["id"] == sent["id"]


async def test_resume_replays_what_was_missed_exactly_once_in_order(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await sign_up(client, 53, "Amy"), await sign_up(client, 54, "Bill")
    chat = await alice.private_chat_with(bob)
    chat_id = chat["id"]
    async with ws_user(server, 54, "Bill") as bob_ws:
        await alice.send(chat_id, "seen live")
        seen = await bob_ws.wait_for("new_message")
    last_seen = seen["seq"]
    for index in range(5):
        await alice.send(chat_id, f"missed {index}")
    async with ws_user(server, 54, "Bill") as bob_ws:

        async def keep_sending() -> None:
            for index in range(10):
                await alice.send(chat_id, f"during resume {index}")

        # `resume` is the client's first frame (as the protocol asks); events sent while the
        # replay runs meet it at the seam.
        await bob_ws.send(type="resume", chats={str(chat_id): last_seen})
        await keep_sending()
        final = await _last_seq(alice, chat_id)
        frames = await _chat_frames(bob_ws, chat_id, final)
    assert [f["seq"] for f in frames] == list(range(last_seen + 1, final + 1))
    texts = [f["message"]["text"] for f in frames if f["type"] == "new_message"]
    assert texts == [f"missed {i}" for i in range(5)] + [f"during resume {i}" for i in range(10)]


async def test_resume_answers_with_the_chats_current_seqs_and_refuses_strangers(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await sign_up(client, 55, "Ava"), await sign_up(client, 56, "Bob")
    carol = await sign_up(client, 57, "Cal")
    chat = await alice.private_chat_with(bob)
    other = await alice.private_chat_with(carol)
    async with ws_user(server, 56, "Bob") as bob_ws:
        await bob_ws.send(type="resume", chats={str(chat["id"]): 0, str(other["id"]): 0})
        error = await bob_ws.wait_for("error")
        assert (error["code"], error["chat_id"]) == ("chat_not_found", other["id"])
        resumed = await bob_ws.wait_for("resumed")
    assert resumed["chats"] == {str(chat["id"]): await _last_seq(alice, chat["id"])}


async def test_a_client_that_never_reads_is_closed_with_4008_and_slows_nobody(
    database_url: str, tmp_dir: Path, client: httpx.AsyncClient
) -> None:
    settings = make_settings(database_url, tmp_dir, ws_send_queue=8)
    app: FastAPI = create_app(settings)
    async with (
        live_server(app, send_buffer=4096) as small,
        httpx.AsyncClient(base_url=small.base_url) as http,
    ):
        alice = await sign_up(http, 58, "Ana")
        slow = await sign_up(http, 59, "Sam")
        fast = await sign_up(http, 60, "Flo")
        group = await alice.create_group("firehose", slow, fast)
        hub = app.state.context.hub
        # A tiny receive buffer and no reading: the server's queue for this socket fills up.
        raw = socket.create_connection((small.host, small.port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with (
            ws_connect(ws_url_for(small, 59, "Sam"), sock=raw, max_queue=1) as slow_ws,
            ws_user(small, 60, "Flo") as fast_ws,
        ):
            await wait_until(lambda: len(hub.connections_of(slow.id)) == 1)
            (slow_connection,) = hub.connections_of(slow.id)
            received: list[Frame] = []

            async def read_fast() -> None:  # a client that reads, as it goes
                while True:
                    frame = await fast_ws.recv(timeout=60)
                    if frame["type"] == "new_message":
                        received.append(frame)

            reader = asyncio.create_task(read_fast())
            sent = 0
            while slow_connection.close_code is None:
                await alice.send(group["id"], f"{sent:05d} " + "x" * 4000)
                sent += 1
                assert sent < 500, "the slow socket was never closed"
                # The reading client keeps up (its queue is as small as the slow one's): each
                # message reaches it while the slow socket's frames pile up.
                await wait_until(partial(_at_least, received, sent), timeout=30)
            assert slow_connection.close_code == 4008
            reader.cancel()
            assert [f["message"]["text"][:5] for f in received] == [f"{i:05d}" for i in range(sent)]
            with pytest.raises(ConnectionClosed) as closed:
                await slow_ws.collect(sent + 1, "new_message", timeout=30)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4008


def _at_least(frames: list[Frame], count: int) -> bool:
    return len(frames) >= count


@asynccontextmanager
async def _not_reading(server: LiveServer, telegram_id: int, name: str) -> AsyncIterator[WsClient]:
    """A socket whose client reads nothing until the test calls recv: tiny buffers on both
    sides, so the server's frames soon wait for it."""
    raw = socket.create_connection((server.host, server.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with ws_connect(ws_url_for(server, telegram_id, name), sock=raw, max_queue=1) as ws:
        yield ws


def _reset_by_peer(ws: WsClient) -> bool:
    """Whether the server reset the connection (the client has not read since)."""
    sock: socket.socket = ws.connection.transport.get_extra_info("socket")
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET


async def test_a_client_that_does_not_take_its_close_frame_is_reset_and_logged(
    database_url: str, tmp_dir: Path, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, tmp_dir, ws_send_queue=8, ws_close_timeout=0.2)
    app: FastAPI = create_app(settings)
    async with (
        live_server(app, send_buffer=4096) as small,
        httpx.AsyncClient(base_url=small.base_url) as http,
    ):
        alice, slow = await sign_up(http, 63, "Ana"), await sign_up(http, 64, "Sid")
        chat = await alice.private_chat_with(slow)
        hub = app.state.context.hub
        with caplog.at_level(logging.INFO):
            async with _not_reading(small, 64, "Sid") as slow_ws:
                await wait_until(lambda: len(hub.connections_of(slow.id)) == 1)
                (slow_connection,) = hub.connections_of(slow.id)
                sent = 0
                while slow_connection.close_code is None:
                    await alice.send(chat["id"], "x" * 4000)
                    sent += 1
                    assert sent < 500, "the slow socket was never closed"
                # Never half-open until a ping timeout: reset once the close timeout is over.
                await wait_until(lambda: _reset_by_peer(slow_ws))
                with pytest.raises(ConnectionClosed) as closed:
                    await slow_ws.collect(sent + 1, "new_message", timeout=30)
    assert closed.value.rcvd is None  # no close frame: the connection was reset
    logged = [record.getMessage() for record in caplog.records]
    assert f"closing a socket of user {slow.id} with 4008: it fell behind (8 frames waiting)" in (
        logged
    )
    assert any("did not take its close frame (code 4008) within 0.2 s" in m for m in logged)


async def test_a_client_that_stops_reading_is_closed_however_little_it_is_sent(
    database_url: str, tmp_dir: Path, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Far fewer frames than the queue holds, but the client takes none: 4008 after
    WS_SEND_TIMEOUT. Its send_message's ack waited behind them; resent with the same
    client_msg_id on a new socket, it acks the one message."""
    settings = make_settings(database_url, tmp_dir, ws_send_timeout=0.3)
    app: FastAPI = create_app(settings)
    async with (
        live_server(app, send_buffer=4096) as small,
        httpx.AsyncClient(base_url=small.base_url) as http,
    ):
        alice, slow = await sign_up(http, 65, "Ann"), await sign_up(http, 66, "Sue")
        chat_id = (await alice.private_chat_with(slow))["id"]
        hub = app.state.context.hub
        mine: dict[str, Any] = {
            "type": "send_message",
            "chat_id": chat_id,
            "text": "mine",
            "client_msg_id": "sue-1",
        }
        with caplog.at_level(logging.INFO):
            async with _not_reading(small, 66, "Sue") as slow_ws:
                await wait_until(lambda: len(hub.connections_of(slow.id)) == 1)
                (slow_connection,) = hub.connections_of(slow.id)
                for index in range(40):  # ~160 KB, a sixth of the 256-frame queue
                    await alice.send(chat_id, f"{index:02d} " + "x" * 4000)
                await slow_ws.send(**mine)
                await wait_until(lambda: slow_connection.close_code is not None)
                with pytest.raises(ConnectionClosed) as closed:
                    await slow_ws.collect(100, "new_message", timeout=30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4008
        assert (
            f"closing a socket of user {slow.id} with 4008: it fell behind"
            " (took no frame for 0.3 s)"
        ) in [record.getMessage() for record in caplog.records]
        async with ws_user(small, 66, "Sue") as again:
            await again.send(**mine)
            ack = await again.wait_for("ack")
        history = await slow.ok("GET", f"/api/v1/chats/{chat_id}/messages?limit=100")
    stored = [m for m in history["messages"] if m["text"] == "mine"]
    assert [m["id"] for m in stored] == [ack["message_id"]]


async def test_a_client_whose_ping_times_out_behind_unread_frames_is_reset_and_logged(
    database_url: str, tmp_dir: Path, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """The ping timeout (well before WS_SEND_TIMEOUT) finds a client that stopped reading while
    the kernel's buffers still take what it is sent (the app never sees it fall behind): the
    server logs it and resets the connection at once, instead of leaving its unread frames to
    wait in the kernel until it reads again."""
    settings = make_settings(
        database_url, tmp_dir, ws_ping_interval=1.0, ws_ping_timeout=0.5, ws_close_timeout=0.2
    )
    app: FastAPI = create_app(settings)
    async with (
        live_server(app) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        alice, slow = await sign_up(http, 67, "Ari"), await sign_up(http, 68, "Sol")
        chat_id = (await alice.private_chat_with(slow))["id"]
        last = (await alice.send(chat_id, "seen"))["seq"]
        with caplog.at_level(logging.INFO):
            async with _not_reading(server, 68, "Sol") as slow_ws:
                await slow_ws.send(type="resume", chats={str(chat_id): last})
                for index in range(30):  # ~120 KB: more than the client's buffers take
                    await alice.send(chat_id, f"{index} " + "x" * 4000)
                await wait_until(lambda: _reset_by_peer(slow_ws))
    assert any(
        "answered no ping within 0.5 s: reset" in record.getMessage() for record in caplog.records
    )


async def test_a_replay_longer_than_the_send_queue_arrives_whole(
    database_url: str, tmp_dir: Path
) -> None:
    settings = make_settings(database_url, tmp_dir, ws_send_queue=8)
    async with (
        live_server(create_app(settings)) as small,
        httpx.AsyncClient(base_url=small.base_url) as http,
    ):
        alice, bob = await sign_up(http, 61, "Ana"), await sign_up(http, 62, "Ben")
        chat = await alice.private_chat_with(bob)
        start = await _last_seq(alice, chat["id"])
        for index in range(40):
            await alice.send(chat["id"], f"missed {index}")
        final = await _last_seq(alice, chat["id"])
        async with ws_user(small, 62, "Ben") as bob_ws:
            await bob_ws.send(type="resume", chats={str(chat["id"]): start})
            frames = await _chat_frames(bob_ws, chat["id"], final)
    assert [f["seq"] for f in frames] == list(range(start + 1, final + 1))
