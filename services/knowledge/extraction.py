"""A document's text, with its headings marked as Markdown headings (`## Refunds`) so that one
chunker serves every format: PDF (pypdf, best effort: no headings), DOCX (python-docx; heading
styles), HTML (Beautiful Soup; h1-h6), Markdown and plain text as they are.

Extraction runs in a worker thread and is bounded: at most MAX_PAGES pages of a PDF and
MAX_CHARACTERS characters of any document.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from enum import StrEnum

from core.errors import UnsupportedMediaType

MAX_PAGES = 1000
MAX_CHARACTERS = 2_000_000

_HEADING_STYLE = re.compile(r"^(?:heading\s*(\d)|title)$", re.IGNORECASE)
_TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".text", ""})
_HTML_EXTENSIONS = frozenset({".html", ".htm"})
_HTML_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td", "th")


class SourceFormat(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    TEXT = "text"  # plain text and Markdown


class ExtractionError(Exception):
    """The file cannot be read as its format: the document fails with this message."""


def detect_format(filename: str | None, head: bytes) -> SourceFormat:
    """What an upload is, from its first bytes and its name; 415 for anything else."""
    extension = os.path.splitext(filename or "")[1].lower()
    if head.startswith(b"%PDF-"):
        return SourceFormat.PDF
    if head.startswith(b"PK\x03\x04"):
        if extension == ".docx":
            return SourceFormat.DOCX
    elif extension in _HTML_EXTENSIONS or head.lstrip()[:15].lower().startswith(
        (b"<!doctype html", b"<html")
    ):
        return SourceFormat.HTML
    elif extension in _TEXT_EXTENSIONS and b"\x00" not in head:
        return SourceFormat.TEXT
    raise UnsupportedMediaType(
        "A document must be a PDF, DOCX, HTML, Markdown or plain text file",
        code="unsupported_document",
    )


def extract_text(source_format: SourceFormat, data: bytes) -> str:
    """The text of a document (blocking: run it in a thread); raises ExtractionError."""
    try:
        if source_format is SourceFormat.PDF:
            text = _pdf(data)
        elif source_format is SourceFormat.DOCX:
            text = _docx(data)
        elif source_format is SourceFormat.HTML:
            text = _html(data)
        else:
            text = data.decode("utf-8", errors="replace")
    except ExtractionError:
        raise
    except Exception as exc:  # every library's own errors for a malformed file
        raise ExtractionError(f"The {source_format.value.upper()} file cannot be read") from exc
    text = text.replace("\x00", "")[:MAX_CHARACTERS]
    if not text.strip():
        raise ExtractionError("The document has no text")
    return text


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    pages: list[str] = []
    length = 0
    for page in reader.pages[:MAX_PAGES]:
        text = page.extract_text() or ""
        pages.append(text)
        length += len(text)
        if length >= MAX_CHARACTERS:
            break
    return "\n\n".join(pages)


def _docx(data: bytes) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ExtractionError("The DOCX file cannot be read") from exc
    blocks: list[str] = []
    length = 0
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = paragraph.style.name if paragraph.style is not None else ""
        heading = _HEADING_STYLE.match(style or "")
        if heading:
            text = "#" * int(heading.group(1) or 1) + " " + text.replace("\n", " ")
        blocks.append(text)
        length += len(text)
        if length >= MAX_CHARACTERS:
            break
    return "\n\n".join(blocks)


def _html(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data[: MAX_CHARACTERS * 4], "html.parser")
    for hidden in soup(["script", "style", "noscript", "template"]):
        hidden.decompose()
    blocks: list[str] = []
    for element in soup.find_all(_HTML_BLOCKS):
        # Only the innermost blocks: a <li> holding a <p> is read once.
        if element.find(_HTML_BLOCKS) is not None:
            continue
        text = " ".join(element.get_text(" ").split())
        if not text:
            continue
        if element.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = "#" * int(element.name[1]) + " " + text
        blocks.append(text)
    return "\n\n".join(blocks)
