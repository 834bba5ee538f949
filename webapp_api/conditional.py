"""Conditional reads: an ETag on reads that polling clients repeat, and 304 when it matches.

The tag is a digest of a version (what the answer is built from), taken before the answer is
built: a change committed in between gives a newer body under the older tag, which the next
request replaces. It is weak: equal tags mean equal content, not equal bytes.
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response

# The answer depends on who asks: a shared cache must never serve it, and a browser revalidates
# it before every use.
CACHE_HEADERS = {
    "Cache-Control": "private, no-cache",
    "Vary": "X-Telegram-Init-Data, Authorization",
}


# The `responses=` entry of a conditional read, so the OpenAPI document lists its 304.
NOT_MODIFIED: dict[int | str, dict[str, str]] = {
    304: {"description": "Not modified: `If-None-Match` holds the current `ETag` (no body)"}
}


def etag(*version: object) -> str:
    digest = hashlib.sha256(repr(version).encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def _matches(if_none_match: str, tag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(",")
    )


def not_modified(request: Request, tag: str) -> Response | None:
    """The 304 to send when the client already holds this version, else None."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is None or not _matches(if_none_match, tag):
        return None
    return Response(status_code=304, headers={"ETag": tag, **CACHE_HEADERS})


def mark(response: Response, tag: str) -> None:
    """Labels a full answer with its tag and caching rules."""
    response.headers["ETag"] = tag
    response.headers.update(CACHE_HEADERS)
