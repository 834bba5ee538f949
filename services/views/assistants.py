"""Assistants as clients see them, their usage, and the summary a chat carries of its own."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models import Assistant, AssistantVisibility


class AssistantBrief(BaseModel):
    """What a chat shows of the assistant that is its AI."""

    id: int
    name: str
    avatar_media_id: int | None

    @classmethod
    def of(cls, assistant: Assistant) -> AssistantBrief:
        return cls(id=assistant.id, name=assistant.name, avatar_media_id=assistant.avatar_media_id)


class AssistantView(BaseModel):
    id: int
    name: str
    description: str | None
    avatar_media_id: int | None
    instructions: str
    model: str | None = Field(description="None: the server's default model")
    greeting: str | None
    temperature: float | None
    max_reply_tokens: int | None
    visibility: AssistantVisibility
    owner_id: int
    uses: int = Field(description="conversations started with it")
    is_mine: bool
    archived: bool
    created_at: datetime
    updated_at: datetime
    share_token: str | None = Field(description="the owner's only: what a `link` one is shared by")
    start_param: str | None = Field(
        description="the owner's only: the Mini App's `startapp` parameter that opens it"
    )
    url: str | None = Field(description="the owner's only: the deep link (with WEBAPP_URL set)")


class RecentComment(BaseModel):
    value: int = Field(description="+1 or -1")
    comment: str
    created_at: datetime


class RatingCounts(BaseModel):
    up: int
    down: int


class AssistantUsage(BaseModel):
    conversations: int
    messages: int = Field(description="its finished replies")
    cost_micros: int
    ratings: RatingCounts
    recent_comments: list[RecentComment]


class RatingView(BaseModel):
    message_id: int
    chat_id: int
    value: str = Field(description='"up" or "down"')
    comment: str | None
    assistant_id: int | None


def start_param_of(assistant: Assistant) -> str:
    """`assistant_<id>`, and for a `link` one `_<share token>` (at most 64 characters of
    [A-Za-z0-9_-], as Telegram's startapp allows)."""
    if assistant.visibility == AssistantVisibility.LINK:
        return f"assistant_{assistant.id}_{assistant.share_token}"
    return f"assistant_{assistant.id}"
