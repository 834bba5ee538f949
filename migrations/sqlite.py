"""What SQLite migrations share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

# SQLite's full-text index of knowledge chunks (migration 0012): an FTS5 virtual table and the
# shadow tables FTS5 keeps for it, kept in sync by triggers; no model describes them.
SQLITE_FTS_TABLES = re.compile(r"knowledge_chunks_fts(_\w+)?")
# Its PostgreSQL counterpart: a generated tsvector column of knowledge_chunks and its index.
POSTGRES_FTS_OBJECTS = frozenset({"text_search", "ix_knowledge_chunks_text_fts"})


@contextmanager
def foreign_keys_off() -> Iterator[None]:
    """SQLite rebuilds a table to change its constraints, and dropping the old one with foreign
    keys on would delete (cascade to) the rows that reference it. Foreign keys are switched
    only between transactions; the references are checked before foreign keys come back."""
    bind = op.get_bind()
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield
        broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"references broken by the rebuild: {broken[:5]}")
    except BaseException:
        bind.exec_driver_sql("ROLLBACK")
        bind.exec_driver_sql("PRAGMA foreign_keys=ON")
        bind.exec_driver_sql("BEGIN IMMEDIATE")
        raise
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=ON")
    bind.exec_driver_sql("BEGIN IMMEDIATE")
