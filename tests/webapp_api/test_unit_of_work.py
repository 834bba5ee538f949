"""A request's unit of work commits before its response leaves, so a client never acts on a
success that was not committed."""

from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.telegram import auth_headers


async def test_the_commit_happens_before_the_response_is_sent(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    engine = app.state.context.engine.sync_engine
    committed: list[bool] = []

    def slow_commit(_connection: Any) -> None:
        time.sleep(0.3)  # a slow disk: the response must still wait for the commit
        committed.append(True)

    event.listen(engine, "commit", slow_commit)
    try:
        response = await client.get("/api/v1/me", headers=auth_headers(4321, "Slow"))
        assert response.status_code == 200
        assert committed, "the response arrived before the transaction committed"
    finally:
        event.remove(engine, "commit", slow_commit)
