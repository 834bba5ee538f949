"""An assistant published as its own Telegram bot: the owner's token in (checked with Telegram,
kept encrypted), and the webhook that bot's updates arrive at."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response

from core.bounds import Id
from core.errors import NotFound
from services.ai import assistant_bots
from services.ai.assistants import owned_assistant
from services.views.assistant_bots import AssistantBotOut
from webapp_api.deps import Context, CurrentUser, Session
from webapp_api.schemas.assistant_bots import AssistantBotToken
from webapp_api.schemas.errors import errors

router = APIRouter(prefix="/api/v1", tags=["assistants"], responses=errors(401))


@router.put(
    "/assistants/{assistant_id}/bot",
    response_model=AssistantBotOut,
    responses=errors(400, 404, 409, 422, 503),
)
async def publish_assistant_bot(
    assistant_id: Id,
    body: AssistantBotToken,
    user: CurrentUser,
    session: Session,
    context: Context,
) -> AssistantBotOut:
    """The owner's assistant answers in Telegram as the bot of this token (replacing its bot):
    Telegram must know the token (getMe), and no other assistant may have it."""
    await owned_assistant(session, user, assistant_id)
    cipher = assistant_bots.token_cipher(context.settings)
    token = assistant_bots.check_token_format(body.token)
    # aiogram is imported by a process when it first talks to Telegram (seconds of start-up).
    from bot.assistant_bots import identify_token

    identity = await identify_token(context.settings, token)
    published = await assistant_bots.publish_bot(
        session,
        user,
        assistant_id,
        identity,
        token,
        cipher,
        main_bot_id=context.settings.bot_telegram_id(),
    )
    return AssistantBotOut.of(published, context.settings)


@router.get(
    "/assistants/{assistant_id}/bot", response_model=AssistantBotOut, responses=errors(404, 422)
)
async def get_assistant_bot(
    assistant_id: Id, user: CurrentUser, session: Session, context: Context
) -> AssistantBotOut:
    published = await assistant_bots.published_bot(session, user, assistant_id)
    return AssistantBotOut.of(published, context.settings)


@router.delete("/assistants/{assistant_id}/bot", status_code=204, responses=errors(404, 422))
async def delete_assistant_bot(assistant_id: Id, user: CurrentUser, session: Session) -> Response:
    """The bot stops answering as the assistant, in every process of this server."""
    await assistant_bots.unpublish_bot(session, user, assistant_id)
    return Response(status_code=204)


async def assistant_bot_webhook(
    telegram_bot_id: Id,
    context: Context,
    update: Annotated[dict[str, Any], Body()],
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> dict[str, bool]:
    """An update for an assistant's bot, checked against that bot's own secret token."""
    if context.telegram is None or context.bot_mode != "webhook":
        raise NotFound("Not Found")
    await context.telegram.assistants.feed(telegram_bot_id, secret, update)
    return {"ok": True}
