"""What an integer, an id, a seq, a page, a flag or a number may be, wherever the outside world
hands us one: a path, a query, a form field, a JSON body or a socket frame alike.

Ids and seqs are the database's signed 64-bit integers (BIGINT). A value no row could hold is
invalid input, refused at the edge (422, or an `invalid_frame` error frame) before it reaches a
driver that cannot even send it (OverflowError: a 500). A well-formed id that matches nothing is
the ordinary 404.

Booleans are never integers (`bool` is an `int` subclass: JSON's `true` would be chat 1), and a
float is not an integer either. Decimal strings stay accepted: a path, a query or a form field is
text, and `"42"` means 42 in a JSON body too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Aeon's page numbers: page * per_page (at most 100) stays far inside any OFFSET.
PAGE_MAX = 10**9


def fits_int64(value: int) -> bool:
    """For an integer read out of an opaque string (a cursor) rather than validated by a type."""
    return INT64_MIN <= value <= INT64_MAX


def _not_bool_or_float(value: object) -> object:
    if isinstance(value, bool | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


INTEGERS_ONLY = BeforeValidator(_not_bool_or_float)
"""Refuses booleans and floats. It goes last, after the bounds (`Annotated[int, Field(...),
INTEGERS_ONLY]`): bounds given after a validator would not reach the published JSON schema."""

# `format: int64` states the bound exactly: FastAPI publishes `maximum` as a float (2**63).
_INT64 = {"format": "int64"}

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX, json_schema_extra=_INT64), INTEGERS_ONLY]
"""Any integer a BIGINT column holds."""

Id = Annotated[int, Field(ge=1, le=INT64_MAX, json_schema_extra=_INT64), INTEGERS_ONLY]
"""A row's id (chat, message, user, media, reply...) or a Telegram user id: positive."""

Seq = Annotated[int, Field(ge=0, le=INT64_MAX, json_schema_extra=_INT64), INTEGERS_ONLY]
"""A position in a chat's event sequence: 0 is "before the first event"."""

Page = Annotated[int, Field(ge=1, le=PAGE_MAX), INTEGERS_ONLY]
"""A 1-based page number."""

Flag = Annotated[bool, Strict()]
"""A JSON boolean: `true` or `false`, never 1, "yes" or "on"."""

Number = Annotated[float, Strict()]
"""A JSON number (integer or not), never a boolean or a string."""


NUL_MESSAGE = "Strings may not contain the NUL character (\\u0000)"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", NUL_MESSAGE)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string from a path or a query: no NUL, which no PostgreSQL text column can store."""


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class Input(BaseModel):
    """A request body or a client frame. No string in it may hold NUL (`\u0000`): no
    PostgreSQL text or JSON column can store one, and the write would fail in the driver."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _holds_nul(data):
            raise ValueError(NUL_MESSAGE)
        return data
