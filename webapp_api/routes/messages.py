"""Messages by id, Aeon's message routes, reactions, pins and search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from core.bounds import Id, Page, Text
from services import conversation, messages, users
from services.views.messages import MessageView
from services.views.users import UserBrief
from webapp_api.conditional import NOT_MODIFIED, etag, mark, not_modified
from webapp_api.deps import Ai, Caller, Context, CurrentUser, ReadSession, Session
from webapp_api.schemas.chats import (
    AeonMessageCreate,
    MessageEdit,
    MessageList,
    ReactionSet,
    ReadState,
)
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1", tags=["messages"], responses=errors(401))


@router.post(
    "/messages",
    response_model=MessageView,
    responses=errors(400, 402, 404, 409, 422, 429),
)
async def send_message(
    body: AeonMessageCreate, user: CurrentUser, session: Session, ai: Ai, context: Context
) -> MessageView:
    posted = await conversation.post_message(
        session, user, body.chat_id, body.draft(), ai=ai, limits=context.limits
    )
    return posted.sent.view


@router.get(
    "/messages/chat/{chat_id}",
    response_model=MessageList,
    responses={**errors(404, 422), **NOT_MODIFIED},
)
async def message_page(
    chat_id: Id,
    user: Caller,
    session: ReadSession,
    request: Request,
    response: Response,
    page: Page = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> MessageList | Response:
    """Aeon's pages: page 1 holds the newest `per_page` messages, oldest first within it;
    deleted messages are left out. Conditional: `304` to an `If-None-Match` with the current
    `ETag`."""
    version = await messages.history_page_version(
        session, user, chat_id, page=page, per_page=per_page
    )
    tag = etag("messages", user.id, chat_id, page, per_page, version)
    if (unchanged := not_modified(request, tag)) is not None:
        return unchanged
    result = await messages.history_page(session, user, chat_id, page=page, per_page=per_page)
    mark(response, tag)
    return MessageList(
        messages=result.messages,
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        has_next=result.has_next,
        has_prev=result.has_prev,
    )


@router.post(
    "/messages/forward",
    response_model=MessageView,
    responses=errors(400, 402, 404, 409, 422, 429),
)
async def forward_message(
    message_id: Id, chat_id: Id, user: CurrentUser, session: Session, ai: Ai, context: Context
) -> MessageView:
    """Copies a message into another chat; the caller must be a member of both."""
    posted = await conversation.forward(
        session, user, message_id, chat_id, ai=ai, limits=context.limits
    )
    return posted.sent.view


@router.post(
    "/messages/chat/{chat_id}/read-all", response_model=ReadState, responses=errors(404, 422)
)
async def read_all(chat_id: Id, user: CurrentUser, session: Session) -> ReadState:
    seq = await messages.mark_all_read(session, user, chat_id)
    return ReadState(chat_id=chat_id, last_read_seq=seq)


@router.put(
    "/messages/{message_id}", response_model=MessageView, responses=errors(400, 403, 404, 422)
)
@router.patch(
    "/messages/{message_id}", response_model=MessageView, responses=errors(400, 403, 404, 422)
)
async def edit_message(
    message_id: Id, body: MessageEdit, user: CurrentUser, session: Session
) -> MessageView:
    return await messages.edit_message(session, user, message_id, body.text)


@router.delete(
    "/messages/{message_id}", response_model=MessageView, responses=errors(403, 404, 422)
)
async def delete_message(message_id: Id, user: CurrentUser, session: Session) -> MessageView:
    """Soft delete: the text is cleared and `is_deleted` set, for a placeholder."""
    return await messages.delete_message(session, user, message_id)


@router.post("/messages/{message_id}/read", response_model=ReadState, responses=errors(404, 422))
async def read_message(message_id: Id, user: CurrentUser, session: Session) -> ReadState:
    """Marks read up to and including this message."""
    chat_id, seq = await messages.mark_message_read(session, user, message_id)
    return ReadState(chat_id=chat_id, last_read_seq=seq)


@router.put(
    "/messages/{message_id}/reaction", response_model=MessageView, responses=errors(400, 404, 422)
)
async def set_reaction(
    message_id: Id, body: ReactionSet, user: CurrentUser, session: Session
) -> MessageView:
    """My one reaction to a message (replaces an earlier one)."""
    return await messages.set_reaction(session, user, message_id, body.emoji)


@router.delete(
    "/messages/{message_id}/reaction", response_model=MessageView, responses=errors(400, 404, 422)
)
async def remove_reaction(message_id: Id, user: CurrentUser, session: Session) -> MessageView:
    return await messages.set_reaction(session, user, message_id, None)


@router.post(
    "/messages/{message_id}/pin", response_model=MessageView, responses=errors(400, 403, 404, 422)
)
async def pin_message(message_id: Id, user: CurrentUser, session: Session) -> MessageView:
    return await messages.set_pinned(session, user, message_id, pinned=True)


@router.delete(
    "/messages/{message_id}/pin", response_model=MessageView, responses=errors(400, 403, 404, 422)
)
async def unpin_message(message_id: Id, user: CurrentUser, session: Session) -> MessageView:
    return await messages.set_pinned(session, user, message_id, pinned=False)


@router.get("/search/messages", response_model=list[MessageView], responses=errors(404, 422))
async def search_messages(
    user: Caller,
    session: ReadSession,
    q: Annotated[Text, Query(min_length=1, max_length=200)],
    chat_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=messages.SEARCH_MAX_LIMIT)] = 20,
) -> list[MessageView]:
    """Full-text search in my chats, newest first."""
    return await messages.search_messages(session, user, q, limit=limit, chat_id=chat_id)


@router.get(
    "/users/by-username/{username}",
    response_model=UserBrief,
    tags=["users"],
    responses=errors(404, 422),
)
async def find_user(username: Text, user: CurrentUser, session: Session) -> UserBrief:
    """Find someone by their Telegram username, to start a private chat with them."""
    return UserBrief.of(
        await users.get_user_by_username(session, users.normalize_username(username))
    )
