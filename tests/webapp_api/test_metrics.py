"""`GET /metrics`: Prometheus's text format, read from the live process, and who may read it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.support.api import ApiUser
from tests.support.metrics import scrape
from tests.support.server import LiveServer, live_server
from tests.support.ws import ws_user
from webapp_api.app import create_app

UNAUTHORIZED = {
    "error": "Send Authorization: Bearer <METRICS_TOKEN>",
    "code": "metrics_token_invalid",
    "status_code": 401,
}


async def test_sockets_and_published_envelopes_show_and_move(
    server: LiveServer, alice: ApiUser, bob: ApiUser
) -> None:
    chat = await alice.private_chat_with(bob)
    before = await scrape(server.base_url)
    async with ws_user(server, 101, "Alice"), ws_user(server, 102, "Bob") as bob_ws:
        during = await scrape(server.base_url)
        assert during["aimessenger_ws_connections"] == before["aimessenger_ws_connections"] + 2
        assert during["aimessenger_ws_users"] == before["aimessenger_ws_users"] + 2
        assert during["aimessenger_broker_routes"] >= before["aimessenger_broker_routes"] + 2
        await alice.send(chat["id"], "counted")
        await bob_ws.wait_for("new_message")
        after = await scrape(server.base_url)
    assert (
        after["aimessenger_broker_envelopes_published_total"]
        > during["aimessenger_broker_envelopes_published_total"]
    )
    assert after["process_resident_memory_bytes"] > 0
    # The server unregisters a socket once its close handshake is over.
    for _ in range(100):
        closed = await scrape(server.base_url)
        if closed["aimessenger_ws_connections"] == before["aimessenger_ws_connections"]:
            break
        await asyncio.sleep(0.05)
    assert closed["aimessenger_ws_connections"] == before["aimessenger_ws_connections"]


async def test_without_a_token_only_this_machine_may_read_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    assert (await client.get("/metrics")).status_code == 200
    proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert proxied.status_code == 404
    assert proxied.json()["code"] == "not_found"
    # The same running app, reached from another machine.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as remote:
        response = await remote.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_with_a_token_a_scrape_must_bring_it(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, metrics_token="scrape-secret")
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        # Raw header bytes: the last one is not ASCII, as an attacker may send.
        authorizations: list[bytes | None] = [
            None,
            b"Bearer wrong-secret",
            b"Basic scrape-secret",
            b"Bearer scrape-secret-and-more",
            "Bearer ünïcode".encode("latin-1"),
        ]
        for authorization in authorizations:
            headers = [] if authorization is None else [(b"Authorization", authorization)]
            response = await client.get("/metrics", headers=headers)
            assert response.status_code == 401, authorization
            assert response.json() == UNAUTHORIZED
        samples = await scrape(server.base_url, "scrape-secret")
    assert samples["aimessenger_ws_connections"] == 0
    assert samples["aimessenger_broker_messages_received_total"] == 0
