"""Split long text into parts that fit a message limit, at the most sensible boundary."""

from __future__ import annotations

_BOUNDARIES = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most `limit` characters, split at a paragraph, line, sentence or word
    boundary in the second half of a part when there is one; nothing is lost but the white
    space at the cuts."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = limit
        for boundary in _BOUNDARIES:
            index = window.rfind(boundary)
            if index >= limit // 2:
                cut = index + len(boundary)
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
