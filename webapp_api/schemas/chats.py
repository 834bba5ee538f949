from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.bounds import INTEGERS_ONLY, Flag, Id, Input
from models import MemberRole
from services.chats.lifecycle import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH
from services.events import MAX_EVENTS_PAGE
from services.messages import CLIENT_MSG_ID_MAX_LENGTH, TEXT_MAX_LENGTH, MessageDraft
from services.views.chats import ChatView
from services.views.messages import MessageView


class ChatCreate(Input):
    """Aeon's create-chat body: a group, or a private chat with at most one other member."""

    title: str | None = Field(default=None, max_length=TITLE_MAX_LENGTH)
    chat_type: Literal["private", "group"] = "private"
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    photo_url: str | None = Field(default=None, max_length=1024)
    member_ids: list[Id] = Field(default_factory=list, max_length=200)


class ChatCreated(ChatView):
    """The new (or existing private) chat, and the requested member ids that are no user's."""

    skipped_member_ids: list[int]


class ChatUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=TITLE_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    photo_url: str | None = Field(default=None, max_length=1024)


class MemberRoleUpdate(Input):
    role: MemberRole


class InviteByUsername(Input):
    username: str = Field(min_length=1, max_length=65)


class InviteResult(BaseModel):
    message: str
    status: Literal["added", "invited"]


class InviteLinkCreate(Input):
    expires_in_seconds: Annotated[int, Field(gt=0, le=365 * 86400), INTEGERS_ONLY] | None = None


class InviteLinkOut(BaseModel):
    token: str
    start_param: str
    url: str | None
    expires_at: datetime | None


class MemberSettingsUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    is_favorite: Flag = False
    is_muted: Flag = False
    is_archived: Flag = False


class MessageCreate(Input):
    text: str | None = Field(default=None, max_length=TEXT_MAX_LENGTH + 1024)
    media_ids: list[Id] = Field(default_factory=list, max_length=10)
    reply_to_message_id: Id | None = None
    client_msg_id: str | None = Field(
        default=None, min_length=1, max_length=CLIENT_MSG_ID_MAX_LENGTH
    )

    def draft(self) -> MessageDraft:
        return MessageDraft(
            text=self.text,
            reply_to_message_id=self.reply_to_message_id,
            client_msg_id=self.client_msg_id,
            media_ids=self.media_ids,
        )


class AeonMessageCreate(MessageCreate):
    chat_id: Id
    # Aeon sends it; the type actually follows the attached media.
    message_type: str = "text"


class MessageEdit(Input):
    text: str = Field(max_length=TEXT_MAX_LENGTH + 1024)


class ReadRequest(Input):
    message_id: Id


class ReadState(BaseModel):
    chat_id: int
    last_read_seq: int


class OnlineMembers(BaseModel):
    chat_id: int
    user_ids: list[int]  # members with a socket open now, ascending


class ReactionSet(Input):
    emoji: str = Field(min_length=1, max_length=32)


class HistoryOut(BaseModel):
    messages: list[MessageView]
    has_more: bool


class MessageList(BaseModel):
    """Aeon's page of messages: page 1 is the newest, oldest first within a page."""

    messages: list[MessageView]
    total: int
    page: int
    per_page: int
    has_next: bool
    has_prev: bool


class EventOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    chat_id: int
    seq: int


class EventsOut(BaseModel):
    events: list[EventOut]
    last_seq: int
    has_more: bool


EVENTS_PAGE_LIMIT = MAX_EVENTS_PAGE
