"""What the AI reads before it answers: persona, the chat, as much recent history as fits.

Only the chat's own history goes in, from the chat's context start ("/new") up to the message
being answered. Tokens are estimated locally (no tokenizer downloads). A model with vision sees
the newest photos of that history (`MAX_IMAGES`), read from our storage and brought within the
vendor's limits (`llm.images`); a photo's caption is its text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import Storage, blob_key
from llm.base import ChatTurn, CompletionRequest, ImagePart, ToolSpec
from llm.catalogue import ModelInfo
from llm.images import prepare_image
from llm.tokens import estimate_prompt_tokens
from models import (
    Assistant,
    Chat,
    ChatType,
    Media,
    MediaKind,
    Message,
    MessageMedia,
    MessageType,
    User,
    UserProfile,
)
from services.profile import profile_summary

DEFAULT_PERSONA = (
    "You are a helpful, friendly assistant taking part in a Telegram messenger chat. "
    "Answer concisely and in the language the user writes in."
)
HISTORY_PAGE = 50
# What the AI hears of a voice note, an audio file or a round video: its transcript, once made.
HEARD_TYPES = {MessageType.VOICE: "voice", MessageType.AUDIO: "audio", MessageType.VIDEO: "video"}
HISTORY_MAX_MESSAGES = 400
# Room kept free for the estimate's error and the vendor's own framing.
SAFETY_MARGIN_TOKENS = 256
# The newest images of the history a vision model sees.
MAX_IMAGES = 4


def is_image(media: Media) -> bool:
    """A photo, or a document that is an image."""
    return media.kind == MediaKind.PHOTO or media.mime_type.startswith("image/")


async def message_images(
    session: AsyncSession, chat_id: int, message_ids: Iterable[int]
) -> dict[int, list[Media]]:
    """The images attached to these messages of a chat, in album order, by message."""
    rows = await session.execute(
        select(MessageMedia.message_id, Media)
        .join(Media, Media.id == MessageMedia.media_id)
        .where(
            MessageMedia.chat_id == chat_id,
            MessageMedia.message_id.in_(list(message_ids)),
            or_(Media.kind == MediaKind.PHOTO, Media.mime_type.like("image/%")),
        )
        .order_by(MessageMedia.message_id, MessageMedia.position)
    )
    images: dict[int, list[Media]] = {}
    for message_id, media in rows:
        images.setdefault(message_id, []).append(media)
    return images


async def read_image(storage: Storage, media: Media) -> ImagePart:
    """A stored image as the model sees it: downscaled and re-encoded in a worker thread."""
    data = b"".join([chunk async for chunk in storage.read(blob_key(media.sha256))])
    return await asyncio.to_thread(prepare_image, data)


def _display_name(user: User | None) -> str:
    if user is None:
        return "Someone"
    return " ".join(part for part in (user.first_name, user.last_name) if part) or (
        user.username or f"user {user.id}"
    )


async def system_prompt(
    session: AsyncSession, chat: Chat, requester_id: int | None, assistant: Assistant | None = None
) -> str:
    """An assistant's instructions are the persona of the chats it is the AI of."""
    persona = assistant.instructions if assistant is not None else chat.ai_persona
    parts = [persona or DEFAULT_PERSONA]
    if chat.type == ChatType.GROUP:
        parts.append(
            f'You are a participant of the group chat "{chat.title}". Each message of the '
            'history starts with its sender\'s name, like "Anna: hello". Address people by name '
            "when it helps, and do not prefix your own answers with a name."
        )
    elif chat.type == ChatType.AI and requester_id is not None:
        profile = await session.get(UserProfile, requester_id)
        if profile is not None and profile.enabled:
            summary = profile_summary(profile.data)
            if summary:
                parts.append("What the user shared about themself:\n" + summary)
    return "\n\n".join(parts)


async def build_request(
    session: AsyncSession,
    chat: Chat,
    trigger_message_id: int | None,
    model: ModelInfo,
    *,
    bot_user_id: int,
    requester_id: int | None,
    max_tokens: int,
    temperature: float | None,
    storage: Storage | None,
    tools: tuple[ToolSpec, ...] = (),
    assistant: Assistant | None = None,
    knowledge: str | None = None,
) -> CompletionRequest:
    """The newest history that fits `context_window - max_tokens`, oldest first, offering
    `tools`. Without `storage` (to estimate what the prompt costs), images are counted at
    their most but not read: their parts hold no bytes. `knowledge`: the sources an assistant
    answers from (services.knowledge.answering), after the persona."""
    system = await system_prompt(session, chat, requester_id, assistant)
    if knowledge:
        system += "\n\n" + knowledge
    budget = model.context_window - max_tokens - SAFETY_MARGIN_TOKENS
    budget -= estimate_prompt_tokens(system, [], tools)
    turns: list[ChatTurn] = []
    names: dict[int, str] = {}
    before_id: int | None = (trigger_message_id + 1) if trigger_message_id else None
    seen = 0
    images_left = MAX_IMAGES if model.vision else 0
    while seen < HISTORY_MAX_MESSAGES:
        statement = select(Message).where(Message.chat_id == chat.id, Message.deleted_at.is_(None))
        if before_id is not None:
            statement = statement.where(Message.id < before_id)
        if chat.ai_context_from_id is not None:
            statement = statement.where(Message.id >= chat.ai_context_from_id)
        page = list(
            await session.scalars(statement.order_by(Message.id.desc()).limit(HISTORY_PAGE))
        )
        if not page:
            break
        await _load_names(session, page, names)
        attached = await message_images(session, chat.id, (m.id for m in page))
        for message in page:
            if message.sender_id == bot_user_id and message.type == MessageType.VOICE:
                continue  # the AI's voice note says its text answer again
            # The AI's own pictures are not shown to it again (an assistant turn has no images).
            seen = images_left and message.sender_id != bot_user_id
            media = attached.get(message.id, [])[-images_left:] if seen else []
            images_left -= len(media)
            turn = _turn(chat, message, bot_user_id, names, await _parts(storage, media))
            if not turn.content and not turn.images:
                continue  # nothing the model can read: a video, a file
            cost = estimate_prompt_tokens("", [turn])
            # The message being answered goes in even alone over the budget: the vendor then
            # says context_too_long, instead of answering a prompt without the question.
            if cost > budget and turns:
                return _request(model, system, turns, max_tokens, temperature, tools)
            budget -= cost
            turns.insert(0, turn)
        seen += len(page)
        before_id = page[-1].id
    return _request(model, system, turns, max_tokens, temperature, tools)


def _request(
    model: ModelInfo,
    system: str,
    turns: list[ChatTurn],
    max_tokens: int,
    temperature: float | None,
    tools: tuple[ToolSpec, ...],
) -> CompletionRequest:
    return CompletionRequest(
        model=model.vendor_model,
        system=system,
        turns=turns,
        max_tokens=max_tokens,
        temperature=temperature,
        tools=tools,
    )


async def _load_names(session: AsyncSession, page: list[Message], names: dict[int, str]) -> None:
    missing = {m.sender_id for m in page if m.sender_id is not None} - names.keys()
    if missing:
        for user in await session.scalars(select(User).where(User.id.in_(missing))):
            names[user.id] = _display_name(user)


async def _parts(storage: Storage | None, media: list[Media]) -> tuple[ImagePart, ...]:
    if storage is None:
        return tuple(ImagePart(b"", m.mime_type) for m in media)
    return tuple([await read_image(storage, m) for m in media])


def _heard(message: Message) -> str:
    """A message as the AI reads it: a voice note by its transcript ("[voice] ..."), or as
    "[voice message]" until it has one; its caption after."""
    label = HEARD_TYPES.get(message.type)
    if label is None:
        return message.text or ""
    heard = f"[{label}] {message.transcript}" if message.transcript else f"[{label} message]"
    return f"{heard}\n{message.text}" if message.text else heard


def _turn(
    chat: Chat,
    message: Message,
    bot_user_id: int,
    names: dict[int, str],
    images: tuple[ImagePart, ...],
) -> ChatTurn:
    text = _heard(message)
    if message.sender_id == bot_user_id:
        return ChatTurn("assistant", text)
    if chat.type == ChatType.GROUP and (text or images):
        text = f"{names.get(message.sender_id or 0, 'Someone')}: {text}"
    return ChatTurn("user", text, images=images)


def prompt_tokens(request: CompletionRequest) -> int:
    return estimate_prompt_tokens(request.system, request.turns, request.tools)
