"""The AI as clients see it: the models on offer, a chat's AI settings, replies and their
usage, and the user's profile the AI reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models import AiMode, AiReply, UserProfile
from services.profile import ProfileData


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    provider: str
    display_name: str
    context_window: int
    max_output_tokens: int
    input_price: int = Field(description="micro-credits per million input tokens")
    output_price: int = Field(description="micro-credits per million output tokens")


class AiSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    chat_id: int
    mode: AiMode
    model: str | None
    persona: str | None
    temperature: float | None
    voice_replies: bool = Field(description="the AI also answers with a voice note")
    can_edit: bool


class AiReplyOut(BaseModel):
    id: int
    chat_id: int
    status: str
    model: str
    reply_to_message_id: int | None
    message_id: int | None
    text: str
    incomplete: bool
    input_tokens: int
    output_tokens: int
    cost_micros: int
    error_code: str | None
    error_message: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, reply: AiReply, *, live_text: str | None) -> AiReplyOut:
        return cls(
            id=reply.id,
            chat_id=reply.chat_id,
            status=reply.status.value,
            model=reply.model,
            reply_to_message_id=reply.trigger_message_id,
            message_id=reply.reply_message_id,
            text=live_text if live_text is not None else reply.text,
            incomplete=reply.incomplete,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost_micros=reply.cost_micros,
            error_code=reply.error_code,
            error_message=reply.error_message,
            created_at=reply.created_at,
            finished_at=reply.finished_at,
        )


class UsageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: str
    model: str
    replies: int
    input_tokens: int
    output_tokens: int
    cost_micros: int


class ProfileOut(BaseModel):
    enabled: bool
    data: ProfileData

    @classmethod
    def of(cls, profile: UserProfile) -> ProfileOut:
        data: dict[str, Any] = profile.data or {}
        return cls(enabled=profile.enabled, data=ProfileData.model_validate(data))
