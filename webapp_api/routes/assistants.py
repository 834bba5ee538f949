"""Assistants: custom AIs, their catalogue, conversations with them, groups that take one as
their AI, and ratings of AI replies. Who may see an assistant is decided in
`services.ai.assistants`: to anyone else it is a 404 on every route."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from core.bounds import Id, Text
from core.errors import ServiceUnavailable
from services.ai import assistants
from services.ai.runtime import AiRuntime
from services.chats import listing
from services.views.assistants import AssistantUsage, AssistantView, RatingView
from services.views.chats import ChatView
from webapp_api.deps import Ai, Caller, Context, CurrentUser, ReadSession, Session
from webapp_api.schemas.assistants import (
    AssistantCreate,
    AssistantUpdate,
    GroupAssistant,
    RatingPut,
    ShareToken,
    StartChat,
)
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1", tags=["assistants"], responses=errors(401))

Ok = dict[str, bool]


def _ai(ai: AiRuntime | None) -> AiRuntime:
    if ai is None:
        raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
    return ai


@router.post("/assistants", response_model=AssistantView, responses=errors(400, 404, 422))
async def create_assistant(
    body: AssistantCreate, user: CurrentUser, session: Session, context: Context
) -> AssistantView:
    """A new assistant of mine. `model`: a chat model of `GET /llm/models` (null: the server's
    default); `avatar_media_id`: a photo I uploaded."""
    assistant = await assistants.create_assistant(
        session, context.ai, user, body.model_dump(exclude_unset=True)
    )
    return assistants.assistant_view(assistant, user, context.settings.webapp_url)


@router.get("/assistants", response_model=list[AssistantView], responses=errors(422))
async def list_assistants(
    user: Caller,
    session: ReadSession,
    context: Context,
    response: Response,
    query: Annotated[Text | None, Query(max_length=assistants.QUERY_MAX_LENGTH)] = None,
    owner: Annotated[
        Literal["me"] | None, Query(description="`me`: my own assistants, archived too")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=assistants.CATALOGUE_MAX_LIMIT)] = 50,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> list[AssistantView]:
    """The catalogue: public assistants that are not archived, `query` found in their name or
    description, most used first. With `owner=me`, my own. When more exist, the
    `X-Next-Cursor` header holds the `cursor` of the next page. Chats without an assistant are
    answered by the built-in AI, which is not listed."""
    page = await assistants.list_assistants(
        session, user, mine=owner == "me", query=query, limit=limit, cursor=cursor
    )
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [
        assistants.assistant_view(item, user, context.settings.webapp_url) for item in page.items
    ]


@router.get("/assistants/{assistant_id}", response_model=AssistantView, responses=errors(404, 422))
async def get_assistant(
    assistant_id: Id,
    user: Caller,
    session: ReadSession,
    context: Context,
    share_token: Annotated[ShareToken | None, Query()] = None,
) -> AssistantView:
    """A `link` assistant needs its `share_token` from anyone but its owner."""
    assistant = await assistants.visible_assistant(session, user, assistant_id, share_token)
    return assistants.assistant_view(assistant, user, context.settings.webapp_url)


@router.patch(
    "/assistants/{assistant_id}", response_model=AssistantView, responses=errors(400, 404, 422)
)
async def update_assistant(
    assistant_id: Id, body: AssistantUpdate, user: CurrentUser, session: Session, context: Context
) -> AssistantView:
    """Its owner's only; the fields given change."""
    assistant = await assistants.update_assistant(
        session, context.ai, user, assistant_id, body.model_dump(exclude_unset=True)
    )
    return assistants.assistant_view(assistant, user, context.settings.webapp_url)


@router.delete(
    "/assistants/{assistant_id}", response_model=AssistantView, responses=errors(404, 422)
)
async def archive_assistant(
    assistant_id: Id, user: CurrentUser, session: Session, context: Context
) -> AssistantView:
    """Archives it: out of the catalogue, no new chats or groups; its existing chats are told
    it was archived (`assistant_archived`) when they ask it something."""
    assistant = await assistants.archive_assistant(session, user, assistant_id)
    return assistants.assistant_view(assistant, user, context.settings.webapp_url)


@router.get(
    "/assistants/{assistant_id}/usage", response_model=AssistantUsage, responses=errors(404, 422)
)
async def assistant_usage(assistant_id: Id, user: Caller, session: ReadSession) -> AssistantUsage:
    """Its owner's only: conversations started, replies, their cost, ratings and comments."""
    return await assistants.assistant_usage(session, user, assistant_id)


@router.post(
    "/assistants/{assistant_id}/chat",
    response_model=ChatView,
    responses=errors(400, 404, 409, 422, 503),
)
async def start_assistant_chat(
    assistant_id: Id,
    user: CurrentUser,
    session: Session,
    ai: Ai,
    body: StartChat | None = None,
) -> ChatView:
    """My own AI chat with the assistant, the same one on every call (its greeting first)."""
    chat = await assistants.start_chat(
        session, _ai(ai), user, assistant_id, body.share_token if body else None
    )
    return await listing.get_chat(session, user, chat.id)


@router.post(
    "/chats/{chat_id}/assistant",
    response_model=ChatView,
    responses=errors(400, 403, 404, 409, 422, 503),
)
async def set_group_assistant(
    chat_id: Id, body: GroupAssistant, user: CurrentUser, session: Session, ai: Ai
) -> ChatView:
    """The group's AI becomes this assistant (admins only); the bot joins the group."""
    await assistants.set_group_assistant(
        session, _ai(ai), user, chat_id, body.assistant_id, body.share_token
    )
    return await listing.get_chat(session, user, chat_id)


@router.delete(
    "/chats/{chat_id}/assistant", response_model=ChatView, responses=errors(400, 403, 404, 422, 503)
)
async def clear_group_assistant(
    chat_id: Id, user: CurrentUser, session: Session, ai: Ai
) -> ChatView:
    """The group's AI is the built-in one again."""
    await assistants.set_group_assistant(session, _ai(ai), user, chat_id, None)
    return await listing.get_chat(session, user, chat_id)


@router.put(
    "/chats/{chat_id}/messages/{message_id}/rating",
    response_model=RatingView,
    responses=errors(400, 404, 422, 503),
)
async def rate_message(
    chat_id: Id, message_id: Id, body: RatingPut, user: CurrentUser, session: Session, ai: Ai
) -> RatingView:
    """My thumbs up or down (and comment) on an AI message; a second one replaces the first."""
    return await assistants.rate_message(
        session, _ai(ai), user, chat_id, message_id, body.value, body.comment
    )


@router.delete(
    "/chats/{chat_id}/messages/{message_id}/rating",
    responses=errors(400, 404, 422, 503),
)
async def unrate_message(
    chat_id: Id, message_id: Id, user: CurrentUser, session: Session, ai: Ai
) -> Ok:
    await assistants.unrate_message(session, _ai(ai), user, chat_id, message_id)
    return {"ok": True}
