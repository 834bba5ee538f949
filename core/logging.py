"""Structured logging: JSON lines in production, readable lines in development.

Every record carries the current request id. Credentials never reach a log line: query strings
that carry initData, tokens or signatures are redacted before any handler sees them.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_SECRET_PARAMS = re.compile(
    r"(?P<key>(?:init_data|initData|tgWebAppData|token|access_token|refresh_token|sig|hash)=)"
    r"[^&\s\"']*"
)


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(r"\g<key>[redacted]", text)


class RedactingFilter(logging.Filter):
    """Scrubs credentials from the message and its arguments (uvicorn logs request targets)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, *, json_lines: bool) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aiogram"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
