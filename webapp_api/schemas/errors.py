"""The error answers as the OpenAPI document describes them: every status code a route can
answer is listed on it (`responses=errors(...)`) with the one error body all errors share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorOut(BaseModel):
    """`{"error", "code", "status_code"}`, and on some errors fields that say more
    (`retry_after`, `needed_micros`, `max_bytes`, ...)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="what went wrong, for people")
    code: str = Field(description="what went wrong, for programs (e.g. `chat_not_found`)")
    status_code: int


class ValidationProblem(BaseModel):
    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description='where: e.g. ["body", "member_ids", 0]')
    msg: str
    type: str


class ValidationErrorOut(ErrorOut):
    """Invalid input. When the request breaks the documented schema, `code` is
    `validation_error` and `detail` says where; a service's own refusal has its own `code`."""

    detail: list[ValidationProblem] = Field(default_factory=list)


DESCRIPTIONS = {
    400: "Bad request: a body that cannot be parsed, or an action this chat does not allow",
    401: "Missing, invalid, expired or revoked credentials",
    402: "The balance cannot pay for the AI reply",
    403: "Not allowed (e.g. not a chat admin), or a media link that is invalid or expired",
    404: "Not found, or not visible to the caller (anything in a chat they are not in)",
    409: "Conflicts with the current state",
    413: "The upload is too large",
    415: "The upload is not of the declared or a supported type",
    422: "Invalid input: out of range, of the wrong type, or missing",
    429: "Too many requests: wait and try again",
    503: "A service this needs is not configured or not reachable",
}


def errors(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries for these error status codes."""
    return {
        status: {
            "model": ValidationErrorOut if status == 422 else ErrorOut,
            "description": DESCRIPTIONS[status],
        }
        for status in status_codes
    }
