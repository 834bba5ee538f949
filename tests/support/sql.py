"""Watching the SQL a live server runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

from core.logging import request_id_var


@contextmanager
def count_statements(app: FastAPI, prefix: str) -> Iterator[list[str]]:
    """Records the SQL statements that the live server's requests run (not its background
    tasks, such as the AI runner's polling) and that start with `prefix`."""
    seen: list[str] = []
    engine = app.state.context.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        in_request = request_id_var.get() != "-"
        if in_request and statement.lstrip().upper().startswith(prefix):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
