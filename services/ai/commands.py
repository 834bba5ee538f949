"""The commands that address the AI wherever it is: "/ask <question>", "/image <prompt>"."""

from __future__ import annotations

import re

from models import AiJobKind

_COMMAND = re.compile(r"^/(ask|image)(?:@(\w+))?(?=\s|$)\s*(.*)", re.IGNORECASE | re.DOTALL)


def is_command(text: str) -> bool:
    """The text is one of the AI's commands, for this bot or another one."""
    return _COMMAND.match(text) is not None


def addresses_bot(text: str, bot_username: str | None) -> bool:
    """The text is one of the AI's commands for this bot."""
    return _command(text, bot_username) is not None


def _command(text: str | None, bot_username: str | None) -> tuple[str, str] | None:
    """("ask" or "image", what follows) when the text is one of the AI's commands for this
    bot ("/ask@other_bot" is a command for another bot of the group)."""
    command = _COMMAND.match(text or "")
    if command is None:
        return None
    addressee = command.group(2)
    if addressee is not None and addressee.lower() != (bot_username or "").lower():
        return None
    return command.group(1).lower(), command.group(3).strip()


def image_prompt(text: str | None, bot_username: str | None) -> str | None:
    """What to draw, when the text is "/image <prompt>" for this bot."""
    command = _command(text, bot_username)
    return command[1] if command is not None and command[0] == "image" else None


def job_kind(text: str | None, bot_username: str | None) -> AiJobKind:
    return AiJobKind.IMAGE if image_prompt(text, bot_username) is not None else AiJobKind.TEXT
