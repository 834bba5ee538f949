"""Personalisation: what a user tells the AI about themself, and suggestions for it.

Nothing the model suggests is applied silently: `analyze` returns suggestions, and only the
user's own PUT changes the profile.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ServiceUnavailable
from llm.base import ChatTurn, CompletionRequest, LLMError, TextDelta
from llm.catalogue import Catalogue
from models import User, UserProfile

LIST_FIELDS = ("beliefs", "interests", "skills", "desires", "intentions")
ITEM_MAX_LENGTH = 200
ITEMS_MAX = 50


class WeightedValue(BaseModel):
    name: str = Field(min_length=1, max_length=ITEM_MAX_LENGTH)
    weight: float = Field(ge=0, le=1)


class ProfileData(BaseModel):
    values: list[WeightedValue] = Field(default_factory=list, max_length=ITEMS_MAX)
    beliefs: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    interests: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    skills: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    desires: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    intentions: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)


def profile_summary(data: dict[str, Any]) -> str:
    """A few short lines for the system prompt; empty when there is nothing to say."""
    try:
        profile = ProfileData.model_validate(data)
    except ValidationError:
        return ""
    lines = []
    if profile.values:
        ranked = sorted(profile.values, key=lambda v: v.weight, reverse=True)
        lines.append("Values: " + ", ".join(f"{v.name} ({v.weight:.1f})" for v in ranked[:10]))
    for name in LIST_FIELDS:
        items = getattr(profile, name)
        if items:
            lines.append(f"{name.capitalize()}: " + "; ".join(items[:10]))
    return "\n".join(lines)


async def get_profile(session: AsyncSession, user: User) -> UserProfile:
    profile = await session.get(UserProfile, user.id)
    if profile is None:
        profile = UserProfile(user_id=user.id, enabled=False, data=ProfileData().model_dump())
    return profile


async def save_profile(
    session: AsyncSession, user: User, *, enabled: bool, data: ProfileData
) -> UserProfile:
    profile = await session.get(UserProfile, user.id)
    if profile is None:
        profile = UserProfile(user_id=user.id)
        session.add(profile)
    profile.enabled = enabled
    profile.data = data.model_dump()
    await session.flush()
    return profile


ANALYZE_INSTRUCTIONS = (
    "Read the user's text and suggest additions to their personal profile. Answer with one JSON "
    'object and nothing else, with the keys "values" (a list of {"name", "weight"} with weight '
    'between 0 and 1), "beliefs", "interests", "skills", "desires", "intentions" (lists of short '
    "strings). Only include what the text supports; use empty lists otherwise."
)


def parse_suggestions(raw: str) -> ProfileData:
    """The model's answer as profile suggestions; anything unusable becomes empty lists."""
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end <= start:
        return ProfileData()
    try:
        parsed = json.loads(raw[start : end + 1])
    except json.JSONDecodeError:
        return ProfileData()
    if not isinstance(parsed, dict):
        return ProfileData()
    clean: dict[str, Any] = {}
    for name in ("values", *LIST_FIELDS):
        try:
            clean[name] = ProfileData.model_validate({name: parsed.get(name, [])}).model_dump()[
                name
            ]
        except ValidationError:
            clean[name] = []
    return ProfileData.model_validate(clean)


async def suggest(catalogue: Catalogue, text: str) -> ProfileData:
    """Ask the default model for profile suggestions from the user's own text."""
    model = catalogue.default()
    if model is None:
        raise ServiceUnavailable("AI is not configured", code="ai_not_configured")
    request = CompletionRequest(
        model=model.vendor_model,
        system=ANALYZE_INSTRUCTIONS,
        turns=[ChatTurn("user", text)],
        max_tokens=min(model.max_output_tokens, 1024),
        temperature=0.2,
    )
    answer = []
    try:
        async for event in catalogue.provider_for(model).stream(request):
            if isinstance(event, TextDelta):
                answer.append(event.text)
    except LLMError as exc:
        raise ServiceUnavailable(exc.message, code=f"ai_{exc.code}") from None
    return parse_suggestions("".join(answer))
