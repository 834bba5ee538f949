"""The tools the AI may call while it answers, and running them.

A chat model with tool calling (`ModelInfo.tools`) is offered `search_history` (the chat's own
earlier messages) and, when an image model is configured, `generate_image`. Each call runs as
the user who asked for the reply: what they may not see, the tool does not show. The runner
(`workers.ai_runner`) runs each call in a unit of work of its own; a call that cannot run comes
back to the model as an error result, never as a failure of the reply.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import AppError
from core.storage import Storage
from llm.base import ToolCall, ToolResult, ToolSpec
from llm.catalogue import ModelInfo
from models import AiReply, Media, MediaKind, User
from services.ai.runtime import AiRuntime
from services.media.config import MediaConfig
from services.media.storage import store_generated
from services.messages import MessageDraft, search_messages, send_message

SEARCH_HISTORY = "search_history"
GENERATE_IMAGE = "generate_image"
# Model turns of one reply that may call tools; the last one must answer.
MAX_TOOL_STEPS = 4
SEARCH_RESULTS = 10
SEARCH_LINE_CHARACTERS = 300
PROMPT_MAX_CHARACTERS = 4_000

_SEARCH_SPEC = ToolSpec(
    name=SEARCH_HISTORY,
    description=(
        "Search this chat's earlier messages for words, for example what someone said about a "
        "topic. Returns the newest matches as lines 'Name (date): text'."
    ),
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "The words to look for"}},
        "required": ["query"],
    },
)
_IMAGE_SPEC = ToolSpec(
    name=GENERATE_IMAGE,
    description=(
        "Draw a picture and post it in the chat, when the user asks for an image. Describe it "
        "fully in the prompt; then tell the user in a sentence what you drew."
    ),
    parameters={
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "What to draw"}},
        "required": ["prompt"],
    },
)


class ToolFailure(Exception):
    """A call that cannot run; its message goes back to the model."""


def image_model(ai: AiRuntime) -> ModelInfo | None:
    return ai.catalogue.media_model("image")


def offered_tools(ai: AiRuntime, model: ModelInfo) -> tuple[ToolSpec, ...]:
    if not model.tools:
        return ()
    if image_model(ai) is None:
        return (_SEARCH_SPEC,)
    return (_IMAGE_SPEC, _SEARCH_SPEC)


def offers_image_tool(ai: AiRuntime, model: ModelInfo) -> bool:
    return _IMAGE_SPEC in offered_tools(ai, model)


def _text_argument(call: ToolCall, name: str, max_length: int) -> str:
    value: Any = call.arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolFailure(f"{call.name} needs a non-empty string argument {name!r}")
    return value.strip()[:max_length]


def image_prompt(call: ToolCall) -> str:
    return _text_argument(call, "prompt", PROMPT_MAX_CHARACTERS)


def _line(name: str, day: str, text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > SEARCH_LINE_CHARACTERS:
        flat = flat[: SEARCH_LINE_CHARACTERS - 1] + "…"
    return f"{name} ({day}): {flat}"


async def search_history(
    session: AsyncSession, call: ToolCall, *, chat_id: int, requester_id: int | None
) -> ToolResult:
    """The chat's messages matching the query, newest first, as the requester may see them
    now (a member of the chat; else the tool fails)."""
    query = _text_argument(call, "query", 200)
    requester = await session.get(User, requester_id) if requester_id is not None else None
    if requester is None:
        raise ToolFailure("Nobody to search for")
    try:
        found = await search_messages(
            session, requester, query, limit=SEARCH_RESULTS, chat_id=chat_id
        )
    except AppError as error:
        raise ToolFailure(error.message) from None
    lines = [
        _line(
            view.sender.first_name if view.sender else "Someone",
            view.created_at.date().isoformat(),
            view.text,
        )
        for view in found
        if view.text
    ]
    return ToolResult(call.id, "\n".join(lines) if lines else "No messages found.")


async def store_drawn(
    session: AsyncSession,
    storage: Storage,
    config: MediaConfig,
    reply: AiReply,
    bot: User,
    data: bytes,
) -> Media:
    """An image drawn for `reply`: stored as the AI's media, and counted on the reply (what
    it is charged for)."""
    media = await store_generated(
        session, storage, config, bot.id, data, kind=MediaKind.PHOTO, filename="image.png"
    )
    reply.images_generated += 1
    return media


async def post_drawn(
    session: AsyncSession,
    ai: AiRuntime,
    storage: Storage,
    config: MediaConfig,
    reply_id: int,
    data: bytes,
) -> int:
    """An image the model drew with the tool, posted by the AI in the reply's chat at once (the
    answer's text follows). Returns the message's id."""
    reply = await session.get(AiReply, reply_id)
    if reply is None:
        raise ToolFailure("The reply is gone")
    bot = await ai.bot_user(session)
    media = await store_drawn(session, storage, config, reply, bot, data)
    sent = await send_message(session, bot, reply.chat_id, MessageDraft(media_ids=[media.id]))
    return sent.view.id
