"""SQL constructs the hot read paths share."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    SQLColumnExpression,
    String,
    TypeDecorator,
    bindparam,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class _IdList(TypeDecorator[list[int]]):
    """A list of ids as one parameter: a `BIGINT[]` on PostgreSQL, a JSON array elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Iterable[int] | None, dialect: Dialect) -> Any:
        ids = list(value or ())
        return ids if dialect.name == "postgresql" else json.dumps(ids)


class _InIds(FunctionElement[bool]):
    inherit_cache = True


@compiles(_InIds)
def _in_json_array(element: _InIds, compiler: SQLCompiler, **kw: Any) -> str:
    # Both parts are compiled SQL (a column, a bound parameter), never a value.
    column, ids = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608


@compiles(_InIds, "postgresql")
def _in_array(element: _InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} = ANY({ids})"


def in_ids(column: SQLColumnExpression[Any], name: str) -> ColumnElement[bool]:
    """`column IN (the ids of parameter `name`)` with one parameter whatever the number of
    ids, where an expanding `IN` renders one per id: the statement stays one cached statement
    (and one prepared statement on PostgreSQL) for every list."""
    return _InIds(column, bindparam(name, type_=_IdList()))
