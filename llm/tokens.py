"""Local token estimates, with no tokenizer files to download.

Vendors count tokens with their own tokenizers, which we cannot run here; these estimates are
used to fit a conversation into a context window and to estimate a reply's cost before the
vendor reports its usage, so they must not undercount. The rule, per piece of text:

- an ASCII word (letters and digits) is split at case and digit boundaries ("getHTTPSUrl2" ->
  get, HTTPS, Url, 2): a lowercase or capitalized part of up to 12 letters costs one token per
  4 letters, a longer one one per 3 (rare long words split into short pieces), an upper-case
  run one per 2.5 letters, a digit run one per 3 digits (tokenizers group at most 3 digits),
  plus one for a space before a number (tokenizers keep it apart); a word mixing letters and
  digits (hashes, base64, identifiers) costs at least 0.9 token per character;
- a single space is free (it joins the next word), a longer run of spaces or tabs costs one
  token per 8, a run of line breaks one per 2, a run of ASCII punctuation one per 2 characters;
- Cyrillic letters cost 2 tokens per 3 letters, other letters below U+0800 (Latin with
  diacritics, Greek, Hebrew, Arabic, ...) and general punctuation (U+2000-U+206F) 1 token each,
  CJK characters (Han, kana, Hangul and CJK punctuation) 1.5 tokens each;
- anything else (emoji, other scripts, symbols) costs one token per UTF-8 byte, the most a
  byte-level tokenizer can emit.

Images cost what the vendors charge for their size (see `estimate_image_tokens`); tool specs,
calls and results cost the tokens of their JSON text plus a message's overhead each.

Checked against OpenAI's cl100k_base and o200k_base, this gives 1.1 to 1.7 times the larger of
the two counts for English, Russian, Chinese, Japanese and Korean prose and for code (random
strings and long numbers come close to 1.0). Tokenizers that count much more than cl100k_base
(Anthropic's since Claude 4.7 count about 30% more than before) can exceed it; the vendors'
reported usage, not this estimate, is what a reply is billed by whenever they report it.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Sequence

from PIL import Image

from llm.base import ChatTurn, ImagePart, ToolCall, ToolSpec

# Role markers and separators each message costs on top of its text, and the tokens that
# prime the reply; vendors document 3-4 per message, we round up.
MESSAGE_OVERHEAD = 5
REPLY_OVERHEAD = 3
# Anthropic adds a system prompt of its own (346 tokens for Claude 4) to a request with tools.
TOOLS_OVERHEAD = 400
# What an image of unreadable dimensions may cost: Anthropic's largest (about 1.2 megapixels),
# above OpenAI's largest at high detail (8 tiles).
IMAGE_MAX_TOKENS = 1600

_PIECE = re.compile(
    r" ?[A-Za-z0-9]+"  # a word or number, with the space a tokenizer joins to it
    r"|[ \t]+"
    r"|[\r\n]+"
    r"|[!-/:-@\[-`{-~]+"  # ASCII punctuation
    r"|[^\x00-\x7f]+"
    r"|.",  # an ASCII control character
    re.DOTALL,
)
_WORD_PART = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]|[0-9]+")
_CJK_RANGES = (
    (0x3000, 0x30FF),  # CJK punctuation, hiragana, katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # full-width forms
)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _word_tokens(word: str) -> int:
    tokens = 0
    for part in _WORD_PART.findall(word):
        length = len(part)
        if part.isdigit():
            tokens += _ceil_div(length, 3)
        elif length > 1 and part.isupper():
            tokens += _ceil_div(2 * length, 5)
        elif length <= 12:
            tokens += _ceil_div(length, 4)
        else:
            tokens += _ceil_div(length, 3)
    if not word.isalpha() and not word.isdigit():
        tokens = max(tokens, _ceil_div(9 * len(word), 10))
    return tokens


def _is_cjk(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in _CJK_RANGES)


def _non_ascii_tokens(run: str) -> tuple[int, int]:
    """Tokens of a run of non-ASCII characters, and how many of them are CJK."""
    tokens = 0
    cjk = 0
    cyrillic = 0
    for char in run:
        code_point = ord(char)
        if 0x400 <= code_point <= 0x4FF:
            cyrillic += 1
            continue
        tokens += _ceil_div(2 * cyrillic, 3)
        cyrillic = 0
        if _is_cjk(code_point):
            cjk += 1
        elif (code_point < 0x800 and char.isalpha()) or 0x2000 <= code_point <= 0x206F:
            tokens += 1
        else:
            tokens += len(char.encode())
    return tokens + _ceil_div(2 * cyrillic, 3), cjk


def estimate_tokens(text: str) -> int:
    """A conservative (not undercounting) estimate of the tokens `text` costs a model."""
    tokens = 0
    cjk = 0
    for match in _PIECE.finditer(text):
        piece = match.group()
        first = piece[0]
        word = piece.lstrip(" ")
        if word and word[0].isascii() and word[0].isalnum():
            tokens += _word_tokens(word)
            if piece[0] == " " and word[0].isdigit():
                tokens += 1
        elif first in " \t":
            tokens += 0 if piece == " " else _ceil_div(len(piece), 8)
        elif first.isascii():  # line breaks, punctuation, control characters
            tokens += _ceil_div(len(piece), 2)
        else:
            run_tokens, run_cjk = _non_ascii_tokens(piece)
            tokens += run_tokens
            cjk += run_cjk
    return tokens + _ceil_div(3 * cjk, 2)


def _anthropic_image_tokens(width: int, height: int) -> int:
    """Anthropic scales an image down to a long side of 1568 px and about 1.2 megapixels (1092
    px square) and charges a token per 750 pixels."""
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1_200_000 / (width * height)))
    return math.ceil(width * scale * height * scale / 750)


def _openai_image_tokens(width: int, height: int) -> int:
    """OpenAI (high detail) fits an image in 2048x2048, then its short side in 768 px, and
    charges 170 tokens per 512 px tile plus 85."""
    scale = min(1.0, 2048 / max(width, height))
    short_side = min(width, height) * scale
    if short_side > 768:
        scale *= 768 / short_side
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return 85 + 170 * tiles


def estimate_image_tokens(image: ImagePart) -> int:
    """The larger of what Anthropic and OpenAI's gpt-4o class charge for the image (models that
    bill images at a multiple, as gpt-4o-mini does, report more: their usage is what counts)."""
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            width, height = opened.size  # the header only: nothing is decoded
    except (OSError, ValueError, Image.DecompressionBombError):
        return IMAGE_MAX_TOKENS
    if width <= 0 or height <= 0:
        return IMAGE_MAX_TOKENS
    return max(_anthropic_image_tokens(width, height), _openai_image_tokens(width, height))


def estimate_tool_call_tokens(call: ToolCall) -> int:
    """A tool call the model writes: its name and its arguments' JSON."""
    return (
        MESSAGE_OVERHEAD + estimate_tokens(call.name) + estimate_tokens(json.dumps(call.arguments))
    )


def _turn_tokens(turn: ChatTurn) -> int:
    tokens = MESSAGE_OVERHEAD + estimate_tokens(turn.content)
    tokens += sum(estimate_image_tokens(image) for image in turn.images)
    tokens += sum(estimate_tool_call_tokens(call) for call in turn.tool_calls)
    # OpenAI sends each result as a message of its own.
    tokens += sum(
        MESSAGE_OVERHEAD + estimate_tokens(result.call_id) + estimate_tokens(result.content)
        for result in turn.tool_results
    )
    return tokens


def _tools_tokens(tools: Sequence[ToolSpec]) -> int:
    if not tools:
        return 0
    return TOOLS_OVERHEAD + sum(
        estimate_tokens(
            json.dumps(
                {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
            )
        )
        for tool in tools
    )


def estimate_prompt_tokens(
    system: str, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec] = ()
) -> int:
    """Input tokens of a request: the system prompt, the tools offered, and every turn (its
    text, images, tool calls and results), each with its overhead."""
    total = REPLY_OVERHEAD + _tools_tokens(tools)
    if system:
        total += MESSAGE_OVERHEAD + estimate_tokens(system)
    return total + sum(_turn_tokens(turn) for turn in turns)
