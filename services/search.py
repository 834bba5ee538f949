"""Substring search, shared by the message search (on SQLite) and the chat list."""

from __future__ import annotations


def like_pattern(query: str) -> str:
    """A LIKE pattern that finds `query` as a substring, its wildcards taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
