"""Watching the SQL a live server runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

from core.logging import request_id_var


@contextmanager
def watch_statements(
    app: FastAPI, keep: Callable[[str], bool], *, requests_only: bool = True
) -> Iterator[list[str]]:
    """Records the SQL statements the live server runs that `keep` accepts: those of its
    requests only (not its background tasks, such as the AI runner's polling), or all."""
    seen: list[str] = []
    engine = app.state.context.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        in_request = request_id_var.get() != "-"
        if (in_request or not requests_only) and keep(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def count_statements(app: FastAPI, prefix: str) -> AbstractContextManager[list[str]]:
    """The statements of the live server's requests that start with `prefix`."""
    return watch_statements(app, lambda statement: statement.lstrip().upper().startswith(prefix))
