"""Model output (Markdown) as Telegram-safe HTML.

Only the tags Telegram accepts are produced, everything else is escaped. Telegram may still
refuse a message's entities; callers then send the plain text rather than lose it.
"""

from __future__ import annotations

import html
import re

TELEGRAM_TEXT_LIMIT = 4096

_FENCE = re.compile(r"```([\w+-]*)\n?(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__", re.DOTALL)
_ITALIC = re.compile(
    r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?!\w)|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w])"
)
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)


def markdown_to_html(text: str) -> str:
    """Markdown's common marks (code, bold, italic, strike, links, headings) as Telegram HTML."""
    stash: list[str] = []

    def keep(fragment: str) -> str:
        stash.append(fragment)
        return f"\x00{len(stash) - 1}\x00"

    def fence(match: re.Match[str]) -> str:
        language, code = match.group(1), html.escape(match.group(2).rstrip("\n"), quote=False)
        attribute = f' class="language-{language}"' if language else ""
        return keep(f"<pre><code{attribute}>{code}</code></pre>")

    text = _FENCE.sub(fence, text)
    text = _INLINE_CODE.sub(
        lambda m: keep(f"<code>{html.escape(m.group(1), quote=False)}</code>"), text
    )
    text = _LINK.sub(
        lambda m: keep(
            f'<a href="{html.escape(m.group(2))}">{html.escape(m.group(1), quote=False)}</a>'
        ),
        text,
    )
    text = html.escape(text, quote=False)
    text = _HEADING.sub(r"<b>\1</b>", text)
    text = _BOLD.sub(lambda m: f"<b>{m.group(1) or m.group(2)}</b>", text)
    text = _ITALIC.sub(lambda m: f"<i>{m.group(1) or m.group(2)}</i>", text)
    text = _STRIKE.sub(r"<s>\1</s>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: stash[int(m.group(1))], text)
