"""The shared helpers of llm/base.py: HTTP statuses and Retry-After."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from llm.base import LLMErrorCode, retry_after_seconds, status_error


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "rate_limited", True),
        (401, "auth_failed", False),
        (403, "auth_failed", False),
        (408, "timeout", True),
        (503, "overloaded", True),
        (529, "overloaded", True),
        (500, "upstream_error", True),
        (504, "upstream_error", True),
        (400, "bad_request", False),
        (404, "bad_request", False),
        (422, "bad_request", False),
    ],
)
def test_status_error(status: int, code: LLMErrorCode, retryable: bool) -> None:
    error = status_error(status, "message", retry_after=3.0)
    assert (error.code, error.retryable, error.message) == (code, retryable, "message")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    seconds = retry_after_seconds({"retry-after": formatdate(time.time() + 120, usegmt=True)})
    assert seconds is not None
    assert 110 <= seconds <= 121
