from __future__ import annotations

import json
import logging

import pytest

from core.logging import JsonFormatter, RedactingFilter, redact, request_id_var


@pytest.mark.parametrize(
    "line",
    [
        "GET /ws?init_data=query_id%3DAAH%26hash%3Dabc HTTP/1.1",
        "GET /ws?token=eyJhbGciOi.x.y HTTP/1.1",
        "GET /media/5?exp=1&sig=deadbeef HTTP/1.1",
        "GET /app#tgWebAppData=user%3D1 HTTP/1.1",
    ],
)
def test_credentials_in_request_targets_are_redacted(line: str) -> None:
    cleaned = redact(line)
    assert "[redacted]" in cleaned
    for secret in ("AAH", "eyJhbGciOi", "deadbeef", "user%3D1"):
        assert secret not in cleaned


def test_filter_scrubs_uvicorn_style_arguments_and_tags_request_id() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/ws?init_data=secret-stuff", "1.1", 101),
        None,
    )
    token = request_id_var.set("req-1")
    try:
        RedactingFilter().filter(record)
    finally:
        request_id_var.reset(token)
    assert "secret-stuff" not in record.getMessage()
    assert record.request_id == "req-1"  # type: ignore[attr-defined]


def test_json_lines_carry_level_logger_and_request_id() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.request_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING"
    assert entry["request_id"] == "abc"
