from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.bounds import Flag, Input, Number
from models import AiMode
from services.ai.settings import PERSONA_MAX_LENGTH
from services.profile import ProfileData
from services.views.ai import AiReplyOut
from services.views.messages import MessageView


class AiSettingsUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    mode: AiMode = AiMode.MENTION
    model: str | None = Field(default=None, max_length=128)
    persona: str | None = Field(default=None, max_length=PERSONA_MAX_LENGTH)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    voice_replies: Flag = False


class ProfileUpdate(Input):
    enabled: Flag
    data: ProfileData


class ProfileAnalyzeRequest(Input):
    text: str = Field(min_length=1, max_length=8000)


class LlmChatMessage(Input):
    content: str = Field(min_length=1, max_length=4096)
    model: str | None = Field(default=None, max_length=128)


class LlmChatResult(BaseModel):
    user_message: MessageView
    ai_message: MessageView | None
    reply: AiReplyOut
