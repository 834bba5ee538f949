"""Bodies of the assistants' routes, bounded at the edge."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from core.bounds import INTEGERS_ONLY, Id, Input, Number
from models import AssistantVisibility
from services.ai.assistants import (
    COMMENT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    GREETING_MAX_LENGTH,
    INSTRUCTIONS_MAX_LENGTH,
    NAME_MAX_LENGTH,
)

ShareToken = Annotated[str, Field(min_length=1, max_length=64)]
ReplyTokens = Annotated[int, Field(ge=16, le=32_000), INTEGERS_ONLY]
Temperature = Annotated[Number, Field(ge=0, le=2)]


class AssistantFields(Input):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    model: str | None = Field(
        default=None, max_length=128, description="a chat model of `/llm/models`; null: default"
    )
    greeting: str | None = Field(default=None, max_length=GREETING_MAX_LENGTH)
    temperature: Temperature | None = None
    max_reply_tokens: ReplyTokens | None = Field(
        default=None, description="capped by the model's and the server's limits"
    )
    avatar_media_id: Id | None = Field(default=None, description="a photo the caller uploaded")


class AssistantCreate(AssistantFields):
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    instructions: str = Field(min_length=1, max_length=INSTRUCTIONS_MAX_LENGTH)
    visibility: AssistantVisibility = AssistantVisibility.PRIVATE


class AssistantUpdate(AssistantFields):
    """Only the fields given change."""

    name: str = Field(default="", min_length=1, max_length=NAME_MAX_LENGTH)
    instructions: str = Field(default="", min_length=1, max_length=INSTRUCTIONS_MAX_LENGTH)
    visibility: AssistantVisibility = AssistantVisibility.PRIVATE


class StartChat(Input):
    model_config = ConfigDict(extra="forbid")

    share_token: ShareToken | None = Field(
        default=None, description="a `link` assistant's token, for anyone but its owner"
    )


class GroupAssistant(Input):
    model_config = ConfigDict(extra="forbid")

    assistant_id: Id
    share_token: ShareToken | None = None


class RatingPut(Input):
    model_config = ConfigDict(extra="forbid")

    value: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=COMMENT_MAX_LENGTH)
