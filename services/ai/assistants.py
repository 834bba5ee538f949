"""Assistants: custom AIs with their own instructions, model and limits, who may use them, the
conversations people start with them, groups that take one as their AI, and the ratings of
their replies.

Who sees an assistant: a `private` one its owner only; a `link` one its owner and whoever
presents its share token; a `public` one everyone. To anyone else it does not exist: 404,
never 403, on every route. An archived assistant is its owner's only: out of the catalogue, no
new conversations; its existing chats are told it was archived when they ask it something
(`services.ai.policy`), rather than silently answered by another AI.

The built-in AI is no row: a chat without an assistant is answered by it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.bounds import fits_int64
from core.db import upsert_insert
from core.errors import BadRequest, Conflict, NotFound, Unprocessable
from core.settings import webapp_link
from llm.base import LLMError
from models import (
    AiReply,
    AiReplyStatus,
    Assistant,
    AssistantVisibility,
    Chat,
    ChatType,
    Media,
    MediaKind,
    Message,
    ReplyRating,
    User,
)
from services.access import message_not_found, require_membership
from services.ai.runtime import AiRuntime
from services.chats.lifecycle import get_or_create_assistant_chat, record_chat_updated
from services.chats.members import ensure_member
from services.messages import MessageDraft, send_message
from services.views.assistants import (
    AssistantUsage,
    AssistantView,
    RatingCounts,
    RatingView,
    RecentComment,
    start_param_of,
)

NAME_MAX_LENGTH = 64
DESCRIPTION_MAX_LENGTH = 1000
INSTRUCTIONS_MAX_LENGTH = 8000
GREETING_MAX_LENGTH = 2000
COMMENT_MAX_LENGTH = 1000
QUERY_MAX_LENGTH = 100
CATALOGUE_MAX_LIMIT = 100
RECENT_COMMENTS = 20
# 32 URL-safe characters: `assistant_<id>_<token>` stays within startapp's 64.
SHARE_TOKEN_BYTES = 24


def assistant_not_found() -> NotFound:
    return NotFound("Assistant not found", code="assistant_not_found")


def assistant_view(assistant: Assistant, viewer: User, webapp_url: str | None) -> AssistantView:
    mine = assistant.owner_id == viewer.id
    start_param = start_param_of(assistant) if mine else None
    return AssistantView(
        id=assistant.id,
        name=assistant.name,
        description=assistant.description,
        avatar_media_id=assistant.avatar_media_id,
        instructions=assistant.instructions,
        model=assistant.model,
        greeting=assistant.greeting,
        temperature=assistant.temperature,
        max_reply_tokens=assistant.max_reply_tokens,
        visibility=assistant.visibility,
        owner_id=assistant.owner_id,
        uses=assistant.uses,
        is_mine=mine,
        archived=assistant.archived_at is not None,
        created_at=assistant.created_at,
        updated_at=assistant.updated_at,
        share_token=assistant.share_token if mine else None,
        start_param=start_param,
        url=webapp_link(webapp_url, start_param) if start_param else None,
    )


# -- who sees what --------------------------------------------------------------------------------


async def visible_assistant(
    session: AsyncSession, user: User, assistant_id: int, share_token: str | None = None
) -> Assistant:
    """The assistant as `user` may see it (its owner also when archived); else 404."""
    assistant = await session.get(Assistant, assistant_id)
    if assistant is None:
        raise assistant_not_found()
    if assistant.owner_id == user.id:
        return assistant
    if assistant.archived_at is not None:
        raise assistant_not_found()
    if assistant.visibility == AssistantVisibility.PUBLIC:
        return assistant
    if (
        assistant.visibility == AssistantVisibility.LINK
        and share_token is not None
        and secrets.compare_digest(share_token.encode(), assistant.share_token.encode())
    ):
        return assistant
    raise assistant_not_found()


async def owned_assistant(session: AsyncSession, user: User, assistant_id: int) -> Assistant:
    """The assistant if `user` owns it; to anyone else it does not exist."""
    assistant = await session.get(Assistant, assistant_id)
    if assistant is None or assistant.owner_id != user.id:
        raise assistant_not_found()
    return assistant


def _usable(assistant: Assistant) -> Assistant:
    """New conversations and groups take an assistant that is not archived."""
    if assistant.archived_at is not None:
        raise Conflict("This assistant was archived by its owner", code="assistant_archived")
    return assistant


# -- the owner's -----------------------------------------------------------------------------------


async def create_assistant(
    session: AsyncSession, ai: AiRuntime | None, owner: User, fields: dict[str, Any]
) -> Assistant:
    assistant = Assistant(
        owner_id=owner.id,
        share_token=secrets.token_urlsafe(SHARE_TOKEN_BYTES),
        visibility=AssistantVisibility.PRIVATE,
    )
    await _apply(session, ai, owner, assistant, fields)
    session.add(assistant)
    await session.flush()
    return assistant


async def update_assistant(
    session: AsyncSession,
    ai: AiRuntime | None,
    owner: User,
    assistant_id: int,
    changes: dict[str, Any],
) -> Assistant:
    assistant = await owned_assistant(session, owner, assistant_id)
    await _apply(session, ai, owner, assistant, changes)
    await session.flush()
    return assistant


async def archive_assistant(session: AsyncSession, owner: User, assistant_id: int) -> Assistant:
    """Out of the catalogue, no new conversations or groups; idempotent."""
    assistant = await owned_assistant(session, owner, assistant_id)
    if assistant.archived_at is None:
        assistant.archived_at = datetime.now(UTC)
        await session.flush()
    return assistant


def _text(value: Any, field: str, limit: int, *, required: bool) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise Unprocessable(f"{field} must not be empty", code=f"{field}_required")
        return None
    if len(cleaned) > limit:
        raise Unprocessable(f"{field} is longer than {limit} characters", code=f"{field}_too_long")
    return str(cleaned)


async def _apply(
    session: AsyncSession,
    ai: AiRuntime | None,
    owner: User,
    assistant: Assistant,
    fields: dict[str, Any],
) -> None:
    """Checks every field before it changes any, so a refused request changes nothing."""
    values: dict[str, Any] = {}
    for field, limit, required in (
        ("name", NAME_MAX_LENGTH, True),
        ("instructions", INSTRUCTIONS_MAX_LENGTH, True),
        ("description", DESCRIPTION_MAX_LENGTH, False),
        ("greeting", GREETING_MAX_LENGTH, False),
    ):
        if field in fields:
            values[field] = _text(fields[field], field, limit, required=required)
    if fields.get("model") is not None:
        values["model"] = _chat_model(ai, fields["model"])
    elif "model" in fields:
        values["model"] = None
    if "avatar_media_id" in fields:
        values["avatar_media_id"] = await _avatar(session, owner, fields["avatar_media_id"])
    for field in ("temperature", "max_reply_tokens", "visibility"):
        if field in fields:
            values[field] = fields[field]
    for field, value in values.items():
        setattr(assistant, field, value)


def _chat_model(ai: AiRuntime | None, model_id: str) -> str:
    if ai is not None:
        try:
            model = ai.catalogue.get(model_id)
        except LLMError:
            pass
        else:
            if model.kind == "chat":
                return model.id
    raise BadRequest("Unknown or unavailable model", code="unknown_model")


async def _avatar(session: AsyncSession, owner: User, media_id: int | None) -> int | None:
    if media_id is None:
        return None
    media = await session.get(Media, media_id)
    if media is None or media.uploader_id != owner.id:
        raise NotFound("Media not found", code="media_not_found")
    if media.kind != MediaKind.PHOTO:
        raise BadRequest("An avatar is a photo", code="avatar_not_photo")
    return media.id


# -- lists -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssistantPage:
    items: list[Assistant]
    next_cursor: str | None


def _encode_cursor(assistant: Assistant) -> str:
    raw = f"{assistant.uses}|{assistant.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        uses, _, assistant_id = raw.partition("|")
        position = int(uses), int(assistant_id)
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("cursor is not valid", code="bad_cursor") from None
    if not all(fits_int64(value) for value in position):
        raise Unprocessable("cursor is not valid", code="bad_cursor")
    return position


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_assistants(
    session: AsyncSession,
    user: User,
    *,
    mine: bool,
    query: str | None,
    limit: int,
    cursor: str | None,
) -> AssistantPage:
    """The catalogue (public, not archived) or, `mine`, the user's own (archived ones too);
    most used first, `query` matched in name and description."""
    condition: ColumnElement[bool]
    if mine:
        condition = Assistant.owner_id == user.id
    else:
        condition = and_(
            Assistant.visibility == AssistantVisibility.PUBLIC, Assistant.archived_at.is_(None)
        )
    statement = select(Assistant).where(condition)
    if query and query.strip():
        pattern = _like(query.strip())
        statement = statement.where(
            or_(
                func.lower(Assistant.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Assistant.description, "")).like(pattern, escape="\\"),
            )
        )
    if cursor:
        uses, assistant_id = _decode_cursor(cursor)
        statement = statement.where(
            or_(Assistant.uses < uses, and_(Assistant.uses == uses, Assistant.id < assistant_id))
        )
    rows = list(
        await session.scalars(
            statement.order_by(Assistant.uses.desc(), Assistant.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    items = rows[:limit]
    return AssistantPage(items, _encode_cursor(items[-1]) if more and items else None)


# -- conversations and groups ----------------------------------------------------------------------


async def start_chat(
    session: AsyncSession, ai: AiRuntime, user: User, assistant_id: int, share_token: str | None
) -> Chat:
    """The user's own AI chat with the assistant: the same chat on every call. A new one counts
    as a use, and opens with the assistant's greeting."""
    assistant = _usable(await visible_assistant(session, user, assistant_id, share_token))
    bot = await ai.bot_user(session)
    chat, is_new = await get_or_create_assistant_chat(session, user, bot, assistant)
    if is_new:
        await session.execute(
            update(Assistant)
            .where(Assistant.id == assistant.id)
            .values(uses=Assistant.uses + 1)
            .execution_options(synchronize_session=False)
        )
        if assistant.greeting:
            await send_message(session, bot, chat.id, MessageDraft(text=assistant.greeting))
    return chat


async def set_group_assistant(
    session: AsyncSession,
    ai: AiRuntime,
    user: User,
    chat_id: int,
    assistant_id: int | None,
    share_token: str | None = None,
) -> Chat:
    """The group's AI becomes this assistant (None: the built-in AI again); its admins only.
    The bot joins the group as it does when the AI is turned on there."""
    membership = await require_membership(session, chat_id, user.id)
    chat = membership.chat
    if chat.type != ChatType.GROUP:
        raise BadRequest("Only a group takes an assistant this way", code="not_a_group")
    membership.require_manager()
    if assistant_id is not None:
        assistant = _usable(await visible_assistant(session, user, assistant_id, share_token))
        await ensure_member(session, chat, await ai.bot_user(session))
        assistant_id = assistant.id
    if chat.assistant_id != assistant_id:
        chat.assistant_id = assistant_id
        await session.flush()
        await record_chat_updated(session, chat)
    return chat


# -- ratings and usage -----------------------------------------------------------------------------

RATING_VALUES = {"up": 1, "down": -1}


def _rating_view(rating: ReplyRating) -> RatingView:
    return RatingView(
        message_id=rating.message_id,
        chat_id=rating.chat_id,
        value="up" if rating.value > 0 else "down",
        comment=rating.comment,
        assistant_id=rating.assistant_id,
    )


async def _ai_message(
    session: AsyncSession, ai: AiRuntime, user: User, chat_id: int, message_id: int
) -> Message:
    await require_membership(session, chat_id, user.id)
    message = await session.get(Message, (message_id, chat_id))
    if message is None or message.deleted_at is not None:
        raise message_not_found()
    if message.sender_id != (await ai.bot_user(session)).id:
        raise BadRequest("Only the AI's messages are rated", code="not_ai_message")
    return message


async def rate_message(
    session: AsyncSession,
    ai: AiRuntime,
    user: User,
    chat_id: int,
    message_id: int,
    value: str,
    comment: str | None,
) -> RatingView:
    """The user's verdict on an AI message of a chat they are in; a second one replaces it."""
    message = await _ai_message(session, ai, user, chat_id, message_id)
    comment = _text(comment, "comment", COMMENT_MAX_LENGTH, required=False)
    answered_by = await session.scalar(
        select(AiReply.assistant_id).where(
            AiReply.chat_id == chat_id, AiReply.reply_message_id == message.id
        )
    )
    if answered_by is None:
        chat = await session.get(Chat, chat_id)
        answered_by = chat.assistant_id if chat is not None else None
    row = {
        "message_id": message.id,
        "chat_id": chat_id,
        "user_id": user.id,
        "assistant_id": answered_by,
        "value": RATING_VALUES[value],
        "comment": comment,
        "created_at": datetime.now(UTC),
    }
    insert = upsert_insert(session, ReplyRating).values(**row)
    rating = await session.scalar(
        insert.on_conflict_do_update(
            index_elements=["message_id", "user_id"],
            set_={key: insert.excluded[key] for key in ("value", "comment", "created_at")},
        )
        .returning(ReplyRating)
        .execution_options(populate_existing=True)
    )
    if rating is None:  # an upsert always returns its row
        raise message_not_found()
    return _rating_view(rating)


async def unrate_message(
    session: AsyncSession, ai: AiRuntime, user: User, chat_id: int, message_id: int
) -> None:
    message = await _ai_message(session, ai, user, chat_id, message_id)
    rating = await session.scalar(
        select(ReplyRating).where(
            ReplyRating.message_id == message.id, ReplyRating.user_id == user.id
        )
    )
    if rating is None:
        raise NotFound("No rating of yours on this message", code="rating_not_found")
    await session.delete(rating)
    await session.flush()


async def assistant_usage(session: AsyncSession, owner: User, assistant_id: int) -> AssistantUsage:
    assistant = await owned_assistant(session, owner, assistant_id)
    replies, cost = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(AiReply.cost_micros), 0)).where(
                AiReply.assistant_id == assistant.id, AiReply.status == AiReplyStatus.DONE
            )
        )
    ).one()
    counts = dict(
        (
            await session.execute(
                select(ReplyRating.value, func.count())
                .where(ReplyRating.assistant_id == assistant.id)
                .group_by(ReplyRating.value)
            )
        ).all()
    )
    comments = await session.scalars(
        select(ReplyRating)
        .where(ReplyRating.assistant_id == assistant.id, ReplyRating.comment.is_not(None))
        .order_by(ReplyRating.created_at.desc(), ReplyRating.id.desc())
        .limit(RECENT_COMMENTS)
    )
    return AssistantUsage(
        conversations=assistant.uses,
        messages=int(replies),
        cost_micros=int(cost),
        ratings=RatingCounts(up=int(counts.get(1, 0)), down=int(counts.get(-1, 0))),
        recent_comments=[
            RecentComment(value=c.value, comment=c.comment or "", created_at=c.created_at)
            for c in comments
        ],
    )
