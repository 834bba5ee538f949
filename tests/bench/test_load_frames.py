"""The load generator counts a delivery whatever the JSON spacing of its frame: live frames are
compact, frames replayed from the event log carry the payload as PostgreSQL stores it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bench.load import LoadWorker, Socket


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"new_message","chat_id":1,"seq":2,"message":{"id":3,"text":"bm|m7|123"}}',
        '{"type":"new_message","chat_id":1,"seq":2,"message": {"id": 3, "text": "bm|m7|123"}}',
    ],
    ids=["live", "replayed"],
)
def test_a_benchmark_message_is_counted_as_delivered(raw: str) -> None:
    worker = LoadWorker()
    socket = Socket(telegram_id=42, connection=cast(Any, None), api=0)
    worker.on_frame(socket, raw, now=99)
    assert worker.deliveries == [("m7", 42, 99)]
