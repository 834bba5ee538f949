"""Chats, members, invitations, per-chat reads and the event difference."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from core.bounds import Id, Int64, Seq, Text
from core.errors import ServiceUnavailable, Unprocessable
from core.settings import webapp_link
from services import audience, conversation, events, messages, users
from services.access import require_membership
from services.chats import invitations, lifecycle, listing, members
from services.views.chats import ChatListItem, ChatView, MemberView, MySettings, member_view
from services.views.messages import MessageView
from webapp_api.conditional import NOT_MODIFIED, etag, mark, not_modified
from webapp_api.deps import Ai, Caller, Context, CurrentUser, ReadSession, Session
from webapp_api.rate_limits import INVITE_LIMIT
from webapp_api.schemas.chats import (
    EVENTS_PAGE_LIMIT,
    ChatCreate,
    ChatCreated,
    ChatUpdate,
    EventOut,
    EventsOut,
    HistoryOut,
    InviteByUsername,
    InviteLinkCreate,
    InviteLinkOut,
    InviteResult,
    MemberRoleUpdate,
    MemberSettingsUpdate,
    MessageCreate,
    OnlineMembers,
    ReadRequest,
    ReadState,
)
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1", tags=["chats"], responses=errors(401))

Ok = dict[str, bool]


@router.get("/chats", response_model=list[ChatListItem], responses={**errors(422), **NOT_MODIFIED})
async def list_chats(
    user: Caller,
    session: ReadSession,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=listing.CHAT_LIST_MAX_LIMIT)] = 100,
    cursor: Text | None = None,
    q: Annotated[Text | None, Query(max_length=100)] = None,
) -> list[ChatListItem] | Response:
    """My active chats, most recently active first. When more exist, the `X-Next-Cursor`
    header holds the `cursor` for the next page (the body stays Aeon's plain list).
    Conditional: `304` to an `If-None-Match` with the current `ETag`."""
    version = await listing.chat_list_version(session, user)
    tag = etag("chats", user.id, limit, cursor, q, version)
    if (unchanged := not_modified(request, tag)) is not None:
        return unchanged
    page = await listing.list_chats(session, user, limit=limit, cursor=cursor, query=q)
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    mark(response, tag)
    return page.items


@router.get("/chats/search", response_model=list[ChatListItem], responses=errors(422))
async def search_chats(
    user: Caller,
    session: ReadSession,
    q: Annotated[Text, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=listing.CHAT_LIST_MAX_LIMIT)] = 50,
) -> list[ChatListItem]:
    """My chats whose title (or, for private chats and untitled groups, a member's name)
    matches `q`."""
    return (await listing.list_chats(session, user, limit=limit, query=q)).items


@router.post("/chats", response_model=ChatCreated, responses=errors(400, 404, 422, 429))
async def create_chat(
    body: ChatCreate, user: CurrentUser, session: Session, context: Context
) -> ChatCreated:
    """A group (the creator becomes its owner; untitled, its members name it), the private chat
    with one other user (the existing one if there is one), or with no other member the
    caller's own chat (Saved Messages). `member_ids` that are no user's are skipped and listed
    in `skipped_member_ids`. Each new chat counts against the chat creation limit, and a new
    group's members against the invitation limit."""
    if body.chat_type == "group":
        await context.limits.check_invites(user.id, len(set(body.member_ids) - {user.id}))
    created = await lifecycle.create_chat(
        session,
        user,
        chat_type=body.chat_type,
        title=body.title,
        description=body.description,
        photo_url=body.photo_url,
        member_ids=body.member_ids,
    )
    if created.is_new:  # refused: the unit of work rolls the new chat back
        await context.limits.check_chat_create(user.id)
    view = await listing.get_chat(session, user, created.chat.id)
    return ChatCreated(**dict(view), skipped_member_ids=created.skipped_member_ids)


@router.post("/chats/ai", response_model=ChatView, responses=errors(503))
async def my_ai_chat(user: CurrentUser, session: Session, ai: Ai) -> ChatView:
    """My direct chat with the AI, created on first request."""
    if ai is None:
        raise ServiceUnavailable("The AI bot is not configured", code="bot_not_configured")
    chat = await lifecycle.get_or_create_ai_chat(session, user, await ai.bot_user(session))
    return await listing.get_chat(session, user, chat.id)


@router.get("/chats/{chat_id}", response_model=ChatView, responses=errors(404, 422))
async def get_chat(chat_id: Id, user: Caller, session: ReadSession) -> ChatView:
    return await listing.get_chat(session, user, chat_id)


@router.put("/chats/{chat_id}", response_model=ChatView, responses=errors(400, 403, 404, 422))
@router.patch("/chats/{chat_id}", response_model=ChatView, responses=errors(400, 403, 404, 422))
async def update_chat(
    chat_id: Id, body: ChatUpdate, user: CurrentUser, session: Session
) -> ChatView:
    await lifecycle.update_chat(session, user, chat_id, changes=body.model_dump(exclude_unset=True))
    return await listing.get_chat(session, user, chat_id)


@router.delete("/chats/{chat_id}", responses=errors(403, 404, 422))
async def delete_chat(chat_id: Id, user: CurrentUser, session: Session) -> Ok:
    """Soft delete; the owner can restore it within 30 days."""
    await lifecycle.delete_chat(session, user, chat_id)
    return {"ok": True}


@router.post(
    "/chats/{chat_id}/restore", response_model=ChatView, responses=errors(403, 404, 409, 422)
)
async def restore_chat(chat_id: Id, user: CurrentUser, session: Session) -> ChatView:
    await lifecycle.restore_chat(session, user, chat_id)
    return await listing.get_chat(session, user, chat_id)


@router.post("/chats/{chat_id}/leave", responses=errors(400, 404, 422))
async def leave_chat(chat_id: Id, user: CurrentUser, session: Session) -> Ok:
    await members.leave_chat(session, user, chat_id)
    return {"ok": True}


@router.get("/chats/{chat_id}/online", response_model=OnlineMembers, responses=errors(404, 422))
async def online_members(
    chat_id: Id, user: Caller, session: ReadSession, context: Context
) -> OnlineMembers:
    """Who of the members is online now. Groups larger than PRESENCE_MAX_GROUP_SIZE get no
    `user_status` frames: ask this when such a group opens."""
    await require_membership(session, chat_id, user.id)
    member_ids = await audience.chat_member_ids(session, chat_id)
    online = await context.presence.online(sorted(member_ids))
    return OnlineMembers(chat_id=chat_id, user_ids=sorted(online))


@router.post(
    "/chats/{chat_id}/members/{user_id}",
    response_model=ChatView,
    dependencies=[INVITE_LIMIT],
    responses=errors(400, 403, 404, 422, 429),
)
async def add_member(chat_id: Id, user_id: Id, user: CurrentUser, session: Session) -> ChatView:
    await members.add_member(session, user, chat_id, user_id)
    return await listing.get_chat(session, user, chat_id)


@router.delete("/chats/{chat_id}/members/{user_id}", responses=errors(400, 403, 404, 422))
async def remove_member(chat_id: Id, user_id: Id, user: CurrentUser, session: Session) -> Ok:
    """Chat admins remove members; a member may remove themself (leave)."""
    await members.remove_member(session, user, chat_id, user_id)
    return {"ok": True}


@router.patch(
    "/chats/{chat_id}/members/{user_id}",
    response_model=MemberView,
    responses=errors(400, 403, 404, 422),
)
async def set_member_role(
    chat_id: Id, user_id: Id, body: MemberRoleUpdate, user: CurrentUser, session: Session
) -> MemberView:
    """The owner sets roles; making someone owner hands ownership over."""
    member = await members.set_member_role(session, user, chat_id, user_id, body.role)
    return member_view(member, await users.get_user(session, user_id))


@router.post(
    "/chats/{chat_id}/invite-by-username",
    response_model=InviteResult,
    dependencies=[INVITE_LIMIT],
    responses=errors(400, 403, 404, 422, 429),
)
async def invite_by_username(
    chat_id: Id, body: InviteByUsername, user: CurrentUser, session: Session
) -> InviteResult:
    status = await invitations.invite_by_username(session, user, chat_id, body.username)
    message = "User added to the chat" if status == "added" else "Invitation saved"
    return InviteResult(message=message, status=status)


@router.post(
    "/chats/{chat_id}/invite-link",
    response_model=InviteLinkOut,
    dependencies=[INVITE_LIMIT],
    responses=errors(400, 403, 404, 422, 429),
)
async def create_invite_link(
    chat_id: Id,
    user: CurrentUser,
    session: Session,
    context: Context,
    body: InviteLinkCreate | None = None,
) -> InviteLinkOut:
    """A link to join the group; open the Mini App with `startapp=join_<token>`."""
    expires_in = body.expires_in_seconds if body else None
    link = await invitations.create_invite_link(
        session, user, chat_id, expires_in=timedelta(seconds=expires_in) if expires_in else None
    )
    start_param = f"join_{link.token}"
    return InviteLinkOut(
        token=link.token,
        start_param=start_param,
        url=webapp_link(context.settings.webapp_url, start_param),
        expires_at=link.expires_at,
    )


@router.delete("/chats/{chat_id}/invite-link/{token}", responses=errors(403, 404, 422))
async def revoke_invite_link(chat_id: Id, token: Text, user: CurrentUser, session: Session) -> Ok:
    await invitations.revoke_invite_link(session, user, chat_id, token)
    return {"ok": True}


@router.post("/join/{token}", response_model=ChatView, responses=errors(404, 422))
async def join_by_invite_link(token: Text, user: CurrentUser, session: Session) -> ChatView:
    chat = await invitations.join_by_invite_link(session, user, token)
    return await listing.get_chat(session, user, chat.id)


@router.patch(
    "/chats/{chat_id}/settings", response_model=MySettings, responses=errors(400, 404, 422)
)
async def update_my_chat_settings(
    chat_id: Id, body: MemberSettingsUpdate, user: CurrentUser, session: Session
) -> MySettings:
    """My own flags for this chat: favorite, muted, archived."""
    membership = await members.update_member_settings(
        session, user, chat_id, body.model_dump(exclude_unset=True)
    )
    return MySettings.of(membership.member)


@router.get("/chats/{chat_id}/messages", response_model=HistoryOut, responses=errors(404, 422))
async def chat_history(
    chat_id: Id,
    user: Caller,
    session: ReadSession,
    before_id: Int64 | None = None,
    after_id: Int64 | None = None,
    limit: Annotated[int, Query(ge=1, le=messages.HISTORY_MAX_LIMIT)] = 50,
) -> HistoryOut:
    """Messages oldest first: the newest `limit`, or those before `before_id` (scroll up), or
    after `after_id` (catch up). `has_more` says whether more lie in that direction."""
    if before_id is not None and after_id is not None:
        raise Unprocessable("Give before_id or after_id, not both", code="bad_cursor")
    window = await messages.history(
        session, user, chat_id, before_id=before_id, after_id=after_id, limit=limit
    )
    return HistoryOut(messages=window.messages, has_more=window.has_more)


@router.post(
    "/chats/{chat_id}/messages",
    response_model=MessageView,
    responses=errors(400, 402, 404, 409, 422, 429),
)
async def send_message(
    chat_id: Id, body: MessageCreate, user: CurrentUser, session: Session, ai: Ai, context: Context
) -> MessageView:
    """Send a message (text and/or uploaded `media_ids`). Retrying with the same
    `client_msg_id` returns the original. Where the AI answers, its reply streams on the
    socket (`ai_reply_*`)."""
    posted = await conversation.post_message(
        session, user, chat_id, body.draft(), ai=ai, limits=context.limits
    )
    return posted.sent.view


@router.post("/chats/{chat_id}/read", response_model=ReadState, responses=errors(400, 404, 422))
async def mark_read(
    chat_id: Id, body: ReadRequest, user: CurrentUser, session: Session
) -> ReadState:
    """Moves my read marker up to this message; never back."""
    seq = await messages.mark_read(session, user, chat_id, body.message_id)
    return ReadState(chat_id=chat_id, last_read_seq=seq)


@router.get("/chats/{chat_id}/pinned", response_model=list[MessageView], responses=errors(404, 422))
async def pinned_messages(chat_id: Id, user: Caller, session: ReadSession) -> list[MessageView]:
    return await messages.list_pinned(session, user, chat_id)


@router.get("/chats/{chat_id}/events", response_model=EventsOut, responses=errors(404, 422))
async def chat_events(
    chat_id: Id,
    user: Caller,
    session: ReadSession,
    after_seq: Seq = 0,
    limit: Annotated[int, Query(ge=1, le=EVENTS_PAGE_LIMIT)] = 100,
) -> EventsOut:
    """The events after `after_seq`, in order: what a client that missed some needs. Each has
    the same shape the WebSocket pushes."""
    membership = await require_membership(session, chat_id, user.id)
    found = await events.events_after(session, chat_id, after_seq, limit)
    return EventsOut(
        events=[EventOut.model_validate(frame) for frame in found],
        last_seq=membership.chat.last_seq,
        has_more=bool(found) and found[-1]["seq"] < membership.chat.last_seq,
    )
