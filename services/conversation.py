"""A person posts in a chat, and the AI participant hears it.

What every human door (the REST routes, the socket, the bot's handlers) calls to post or
forward: the sender's send limit, the message writer (`services.messages`), then the AI's reply
when it should answer. The AI's runner posts its own messages with `messages.send_message`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import AppError
from models import AiMode, AiReply, Chat, ChatType, Message, User
from services import frames
from services.access import chat_not_found
from services.ai.jobs import publish_reply_event
from services.ai.policy import maybe_reply, mentions_bot, mode_of, request_reply
from services.ai.runtime import AiRuntime
from services.limits import AbuseLimits
from services.messages import MessageDraft, Sent, forward_message, send_message


@dataclass(frozen=True, slots=True)
class Posted:
    sent: Sent
    ai_reply: AiReply | None = None  # the AI participant's reply job, when it answers
    ai_error: AppError | None = None  # why the AI, asked in a group, will not answer


async def post_message(
    session: AsyncSession,
    sender: User,
    chat_id: int,
    draft: MessageDraft,
    *,
    ai: AiRuntime | None,
    limits: AbuseLimits | None,
    addressed_to_ai: bool | None = None,
) -> Posted:
    """`limits`: the Mini App's send limit (None in Telegram, which limits what reaches the
    bot). `addressed_to_ai`: what the door already knows (Telegram's mention entities); else
    the text decides."""
    if limits is not None:
        await limits.check_send(sender.id)
    asks_ai = _may_ask_ai(ai, sender, draft, addressed_to_ai)
    sent = await send_message(session, sender, chat_id, draft, alone=not asks_ai)
    if not asks_ai and mode_of(sent.chat_type, sent.ai_mode) != AiMode.ALWAYS:
        return Posted(sent)  # the AI answers only what asks it here, and this does not
    return await _ask_ai(session, ai, sent, sender, addressed_to_ai)


async def ask(
    session: AsyncSession,
    sender: User,
    chat_id: int,
    draft: MessageDraft,
    *,
    ai: AiRuntime,
    limits: AbuseLimits,
) -> tuple[Sent, AiReply]:
    """Post a message the AI answers whatever the chat's mode (the seed's LLM chat routes)."""
    posted = await post_message(
        session, sender, chat_id, draft, ai=ai, limits=limits, addressed_to_ai=True
    )
    if posted.ai_reply is not None:
        return posted.sent, posted.ai_reply
    chat, message = await _rows(session, posted.sent)
    return posted.sent, await request_reply(session, ai, chat, message, sender)


def _may_ask_ai(
    ai: AiRuntime | None, sender: User, draft: MessageDraft, addressed: bool | None
) -> bool:
    """Whether the message may ask the AI by what it is: a mention or a reply (whose author
    decides), whatever the chat. The chat's own mode is for `send_message` to see."""
    if ai is None or sender.is_bot:
        return False
    if addressed is None:
        addressed = mentions_bot(draft.text, ai.bot_username)
    return addressed or draft.reply_to_message_id is not None


async def _rows(session: AsyncSession, sent: Sent) -> tuple[Chat, Message]:
    """The chat and the message of a send, as the AI's policy reads them."""
    chat = await session.get(Chat, sent.view.chat_id)
    message = await session.get(Message, (sent.view.id, sent.view.chat_id))
    if chat is None or message is None:  # the send committed in this transaction
        raise chat_not_found()
    return chat, message


async def forward(
    session: AsyncSession,
    user: User,
    message_id: int,
    to_chat_id: int,
    *,
    ai: AiRuntime | None,
    limits: AbuseLimits,
) -> Posted:
    """A copy of a message in another chat; the user must be a member of both."""
    await limits.check_send(user.id)
    sent = await forward_message(session, user, message_id, to_chat_id)
    return await _ask_ai(session, ai, sent, user, None)


async def _ask_ai(
    session: AsyncSession, ai: AiRuntime | None, sent: Sent, sender: User, addressed: bool | None
) -> Posted:
    """The AI's reply job for a new message. In the direct AI chat a refusal (busy, over a
    limit, not configured) refuses the message too; in a group the message stands, and the
    refusal is told to the chat as an `ai_reply_failed` without a reply id. A refusal leaves
    no reply job behind (`request_reply` sees to it), so the message needs no savepoint."""
    if not sent.created or ai is None:
        return Posted(sent)
    chat, message = await _rows(session, sent)
    try:
        reply = await maybe_reply(session, ai, chat, message, sender, addressed=addressed)
    except AppError as error:
        if chat.type == ChatType.AI:
            raise
        refusal = frames.ai_reply_failed(
            None, chat.id, reply_to_message_id=message.id, code=error.code, message=error.message
        )
        await publish_reply_event(session, chat.id, refusal, staged=True)
        return Posted(sent, ai_error=error)
    return Posted(sent, ai_reply=reply)
