"""Chats and their members as clients see them, and the payloads of their events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Assistant, Chat, ChatMember, ChatType, MemberRole, User
from services.access import Membership
from services.views.assistants import AssistantBrief
from services.views.messages import MessageView
from services.views.users import UserBrief, user_fields

SAVED_MESSAGES_TITLE = "Saved Messages"
GROUP_TITLE_NAMES = 3


class MemberView(UserBrief):
    """Aeon's chat member shape plus role and read marker."""

    is_admin: bool
    role: str
    joined_at: datetime
    last_read_seq: int


def member_view(member: ChatMember, user: User) -> MemberView:
    return MemberView(
        **user_fields(user),
        is_admin=member.role in (MemberRole.OWNER, MemberRole.ADMIN),
        role=member.role.value,
        joined_at=member.joined_at,
        last_read_seq=member.last_read_seq,
    )


class MySettings(BaseModel):
    is_favorite: bool
    is_muted: bool
    is_archived: bool
    last_read_seq: int

    @classmethod
    def of(cls, member: ChatMember) -> MySettings:
        return cls(
            is_favorite=member.is_favorite,
            is_muted=member.is_muted,
            is_archived=member.is_archived,
            last_read_seq=member.last_read_seq,
        )


class ChatView(BaseModel):
    """Aeon's Chat shape plus the event sequence and the caller's own settings."""

    id: int
    title: str | None
    chat_type: ChatType
    description: str | None
    photo_url: str | None
    created_by: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    last_seq: int
    members: list[MemberView]
    my_settings: MySettings
    # The assistant that is this chat's AI (None: the built-in AI).
    assistant_id: int | None
    assistant: AssistantBrief | None


class ChatListItem(BaseModel):
    """Aeon's chat list entry (with a real unread_count) plus seqs and the caller's flags."""

    id: int
    title: str | None
    chat_type: ChatType
    photo_url: str | None
    # Aeon's: the newest message that is not deleted, as text a list can show as it is.
    last_message: str | None
    last_message_time: datetime | None
    # The same message in full (sender, media, seq, ...), for clients that show more.
    last_message_detail: MessageView | None
    unread_count: int
    last_seq: int
    last_read_seq: int
    is_favorite: bool
    is_muted: bool
    is_archived: bool
    is_active: bool
    member_count: int
    # The other person of a private or AI chat, for avatars and presence.
    peer: UserBrief | None


def member_added_payload(member: ChatMember, user: User) -> dict[str, object]:
    """The payload of a `member_added` event."""
    return {
        "user_id": user.id,
        "role": member.role.value,
        "user": UserBrief.of(user).model_dump(mode="json"),
    }


def member_role_payload(member: ChatMember) -> dict[str, object]:
    """The payload of a `member_updated` event: the member's new role."""
    return {"user_id": member.user_id, "role": member.role.value}


def member_removed_payload(member: ChatMember) -> dict[str, object]:
    return {"user_id": member.user_id}


def chat_payload(chat: Chat) -> dict[str, object]:
    """The payload of a `chat_updated` or `chat_deleted` event."""
    return {
        "chat": {
            "id": chat.id,
            "chat_type": chat.type.value,
            "title": chat.title,
            "description": chat.description,
            "photo_url": chat.photo_url,
            "is_active": chat.is_active,
            "assistant_id": chat.assistant_id,
        }
    }


class ChatNaming(Protocol):
    """What names a chat: a `Chat`, or a row with these columns."""

    @property
    def type(self) -> ChatType: ...
    @property
    def title(self) -> str | None: ...
    @property
    def pair_key(self) -> str | None: ...
    @property
    def created_by(self) -> int | None: ...


def display_title(
    chat: ChatNaming,
    viewer: User,
    peer: UserBrief | None,
    members: Sequence[tuple[int, str]] = (),
) -> str | None:
    """A group's title, else its members' first names (`members`: id and first name, in
    joining order); a private or AI chat is named after the other person, the creator's own
    chat after what it is."""
    if chat.title:
        return chat.title
    if chat.type == ChatType.GROUP:
        names = [name for user_id, name in members if user_id != viewer.id] or [viewer.first_name]
        shown = ", ".join(names[:GROUP_TITLE_NAMES])
        more = len(names) - GROUP_TITLE_NAMES
        return f"{shown} and {more} more" if more > 0 else shown
    if peer is not None:
        return " ".join(part for part in (peer.first_name, peer.last_name) if part)
    return SAVED_MESSAGES_TITLE if _is_saved_messages(chat) else None


def _is_saved_messages(chat: ChatNaming) -> bool:
    return chat.pair_key == f"saved:{chat.created_by}"


async def chat_view(session: AsyncSession, membership: Membership, viewer: User) -> ChatView:
    chat, me = membership.chat, membership.member
    rows = await session.execute(
        select(ChatMember, User)
        .join(User, User.id == ChatMember.user_id)
        .where(ChatMember.chat_id == chat.id)
        .order_by(ChatMember.joined_at, ChatMember.id)
    )
    members = [member_view(member, user) for member, user in rows]
    peer = next((m for m in members if m.id != viewer.id and chat.type != ChatType.GROUP), None)
    assistant = (
        await session.get(Assistant, chat.assistant_id) if chat.assistant_id is not None else None
    )
    return ChatView(
        id=chat.id,
        title=display_title(chat, viewer, peer, [(m.id, m.first_name) for m in members]),
        chat_type=chat.type,
        description=chat.description,
        photo_url=chat.photo_url,
        created_by=chat.created_by,
        is_active=chat.is_active,
        created_at=chat.created_at,
        updated_at=chat.updated_at,
        last_seq=chat.last_seq,
        members=members,
        my_settings=MySettings.of(me),
        assistant_id=chat.assistant_id,
        assistant=AssistantBrief.of(assistant) if assistant is not None else None,
    )
