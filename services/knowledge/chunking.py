"""Splitting a document's text into chunks for retrieval: about TARGET_TOKENS each, never across
a heading (each chunk's `section` is its heading path, "Refunds › Deadlines"), paragraphs kept
whole where they fit, consecutive chunks of a section sharing a short overlap."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llm.tokens import estimate_tokens

TARGET_TOKENS = 800
OVERLAP_TOKENS = 80
SECTION_SEPARATOR = " › "

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    section: str | None
    text: str


def split_into_chunks(text: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    headings: list[str] = []
    paragraphs: list[str] = []

    def flush() -> None:
        if paragraphs:
            section = SECTION_SEPARATOR.join(headings) or None
            chunks.extend(Chunk(section, body) for body in _pack(paragraphs))
            paragraphs.clear()

    for block in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n")):
        lines: list[str] = []
        for line in block.split("\n"):
            heading = _HEADING.match(line.strip())
            if heading is None:
                lines.append(line)
                continue
            if lines:
                paragraphs.append("\n".join(lines).strip())
                lines = []
            flush()
            level = len(heading.group(1))
            del headings[level - 1 :]
            headings.extend([""] * (level - 1 - len(headings)))
            headings.append(heading.group(2))
            headings[:] = [h for h in headings if h]
        body = "\n".join(lines).strip()
        if body:
            paragraphs.append(body)
    flush()
    return chunks


def _pack(paragraphs: list[str]) -> list[str]:
    """Paragraphs into bodies of about TARGET_TOKENS; the next body starts with the last
    OVERLAP_TOKENS' worth of the previous one's closing pieces."""
    pieces = [piece for paragraph in paragraphs for piece in _fitting(paragraph)]
    bodies: list[str] = []
    current: list[str] = []
    size = 0
    fresh = False  # `current` holds more than the previous body's overlap
    for piece in pieces:
        tokens = estimate_tokens(piece)
        if fresh and size + tokens > TARGET_TOKENS:
            bodies.append("\n\n".join(current))
            current, size = _overlap(current)
        current.append(piece)
        size += tokens
        fresh = True
    if fresh:
        bodies.append("\n\n".join(current))
    return bodies


def _overlap(pieces: list[str]) -> tuple[list[str], int]:
    kept: list[str] = []
    size = 0
    for piece in reversed(pieces):
        tokens = estimate_tokens(piece)
        if size + tokens > OVERLAP_TOKENS:
            break
        kept.insert(0, piece)
        size += tokens
    return kept, size


def _fitting(paragraph: str) -> list[str]:
    """A paragraph, or its sentences (or words) when it alone is over TARGET_TOKENS."""
    if estimate_tokens(paragraph) <= TARGET_TOKENS:
        return [paragraph]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if estimate_tokens(sentence) <= TARGET_TOKENS:
            pieces.append(sentence)
            continue
        words = sentence.split()
        step = max(1, TARGET_TOKENS // 4)
        pieces.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    return pieces
