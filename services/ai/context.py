"""What the AI reads before it answers: persona, the chat, as much recent history as fits.

Only the chat's own history goes in, from the chat's context start ("/new") up to the message
being answered. Tokens are estimated locally (no tokenizer downloads).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm.base import ChatTurn, CompletionRequest
from llm.catalogue import ModelInfo
from llm.tokens import estimate_prompt_tokens
from models import Assistant, Chat, ChatType, Message, User, UserProfile
from services.profile import profile_summary

DEFAULT_PERSONA = (
    "You are a helpful, friendly assistant taking part in a Telegram messenger chat. "
    "Answer concisely and in the language the user writes in."
)
HISTORY_PAGE = 50
HISTORY_MAX_MESSAGES = 400
# Room kept free for the estimate's error and the vendor's own framing.
SAFETY_MARGIN_TOKENS = 256


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
    assistant: Assistant | None = None,
    knowledge: str | None = None,
) -> CompletionRequest:
    """The newest history that fits `context_window - max_tokens`, oldest first. `knowledge`:
    the sources an assistant answers from (services.knowledge.answering), after the persona."""
    system = await system_prompt(session, chat, requester_id, assistant)
    if knowledge:
        system += "\n\n" + knowledge
    budget = model.context_window - max_tokens - SAFETY_MARGIN_TOKENS
    budget -= estimate_prompt_tokens(system, [])
    turns: list[ChatTurn] = []
    names: dict[int, str] = {}
    before_id: int | None = (trigger_message_id + 1) if trigger_message_id else None
    seen = 0
    while seen < HISTORY_MAX_MESSAGES:
        statement = select(Message).where(
            Message.chat_id == chat.id, Message.deleted_at.is_(None), Message.text.is_not(None)
        )
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
        for message in page:
            turn = _turn(chat, message, bot_user_id, names)
            cost = estimate_prompt_tokens("", [turn])
            # The message being answered goes in even alone over the budget: the vendor then
            # says context_too_long, instead of answering a prompt without the question.
            if cost > budget and turns:
                return _request(model, system, turns, max_tokens, temperature)
            budget -= cost
            turns.insert(0, turn)
        seen += len(page)
        before_id = page[-1].id
    return _request(model, system, turns, max_tokens, temperature)


def _request(
    model: ModelInfo,
    system: str,
    turns: list[ChatTurn],
    max_tokens: int,
    temperature: float | None,
) -> CompletionRequest:
    return CompletionRequest(
        model=model.vendor_model,
        system=system,
        turns=turns,
        max_tokens=max_tokens,
        temperature=temperature,
    )


async def _load_names(session: AsyncSession, page: list[Message], names: dict[int, str]) -> None:
    missing = {m.sender_id for m in page if m.sender_id is not None} - names.keys()
    if missing:
        for user in await session.scalars(select(User).where(User.id.in_(missing))):
            names[user.id] = _display_name(user)


def _turn(chat: Chat, message: Message, bot_user_id: int, names: dict[int, str]) -> ChatTurn:
    text = message.text or ""
    if message.sender_id == bot_user_id:
        return ChatTurn("assistant", text)
    if chat.type == ChatType.GROUP:
        text = f"{names.get(message.sender_id or 0, 'Someone')}: {text}"
    return ChatTurn("user", text)


def prompt_tokens(request: CompletionRequest) -> int:
    return estimate_prompt_tokens(request.system, request.turns)
