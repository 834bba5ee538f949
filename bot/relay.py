"""Streams AI replies into Telegram.

Private chats get a live draft (`sendMessageDraft`, draft id = reply id, so Telegram's stop
button names the reply), finalised with `sendMessage`. Where drafts are not available, and in
groups, the reply is sent once and then edited as text arrives, at a cadence inside Telegram's
limits. Drafts, edits and the final text all carry entities (bot.formatting), never markup for
Telegram to parse. The final text is always delivered whole: split at 4096 UTF-16 code units
without breaking an entity, retried after a 429. A tool step shows as a chat action ("sending a
photo" while the AI draws), and a drawn image is sent as a photo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import BufferedInputFile, ReplyParameters
from aiogram.types import Message as TelegramMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.formatting import TelegramText, format_markdown
from core.broker import Broker
from core.db import unit_of_work
from services.ai.jobs import SinkReply
from services.ai.tools import GENERATE_IMAGE
from services.telegram_groups import link_telegram_message
from workers.ai_runner import ReplySink
from workers.ai_senses import Speech, SpeechFailed

logger = logging.getLogger(__name__)

T = TypeVar("T")

TYPING_EVERY = 4.5  # Telegram shows a chat action for about 5 seconds
FINAL_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Cadence:
    draft_interval: float  # between two draft updates in a private chat
    private_edit_interval: float  # between two edits of a private message
    group_edit_interval: float  # between two edits in a group
    group_edits_per_minute: int


@dataclass(slots=True)
class _Stream:
    reply: SinkReply
    text: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    use_draft: bool = True
    message_id: int | None = None  # the message being edited (edit mode)
    shown: TelegramText | None = None  # what Telegram shows now
    task: asyncio.Task[None] | None = None


def _is_not_modified(error: TelegramBadRequest) -> bool:
    return "message is not modified" in error.message


class TelegramRelay(ReplySink):
    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        cadence: Cadence,
    ) -> None:
        self._bot = bot
        self._sessionmaker = sessionmaker
        self._broker = broker
        self._cadence = cadence
        self._streams: dict[int, _Stream] = {}
        self._group_edits: dict[int, deque[float]] = {}
        self._actions: set[asyncio.Task[None]] = set()

    # -- ReplySink -------------------------------------------------------------------------

    def started(self, reply: SinkReply) -> None:
        stream = _Stream(reply, use_draft=reply.is_private)
        self._streams[reply.reply_id] = stream
        stream.task = asyncio.get_running_loop().create_task(self._follow(stream))

    def progress(self, reply: SinkReply, text: str) -> None:
        stream = self._streams.get(reply.reply_id)
        if stream is not None:
            stream.text = text
            stream.changed.set()

    async def finished(self, reply: SinkReply, text: str, message_ids: list[int]) -> None:
        stream = await self._stop(reply)
        sent = await self._deliver(stream, text)
        # Our parts and Telegram's are cut by different measures; each of ours is linked to the
        # Telegram message in its place, so that a reply to that one is a reply to the AI.
        links = [
            (ours, theirs)
            for ours, theirs in zip(message_ids, sent, strict=False)
            if theirs is not None
        ]
        if links:
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                for ours, theirs in links:
                    await link_telegram_message(session, reply.chat_id, ours, theirs)

    async def spoken(
        self, reply: SinkReply, speech: Speech | SpeechFailed, message_id: int | None
    ) -> None:
        """The answer's voice note (`sendVoice`), after its text; a failure is told briefly."""
        if isinstance(speech, SpeechFailed):
            notice = TelegramText(f"⚠️ I could not answer with a voice note: {speech.message}", ())
            await self._final_call(lambda: self._send(reply, notice, None))
            return
        voice = BufferedInputFile(speech.audio, filename="voice.ogg")
        reply_to = reply.reply_to_telegram_message_id
        sent = await self._final_call(
            lambda: self._bot.send_voice(
                chat_id=reply.telegram_chat_id,
                voice=voice,
                reply_parameters=(
                    ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                    if reply_to
                    else None
                ),
            )
        )
        if sent is not None and message_id is not None:
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                await link_telegram_message(session, reply.chat_id, message_id, sent.message_id)

    async def failed(self, reply: SinkReply, code: str, message: str) -> None:
        stream = await self._stop(reply)
        notice = f"⚠️ {message} ({code})"
        if stream.message_id is not None:
            await self._final_call(
                lambda: self._bot.edit_message_text(
                    text=notice, chat_id=reply.telegram_chat_id, message_id=stream.message_id
                )
            )
        else:
            await self._final_call(lambda: self._send(reply, TelegramText(notice, ()), None))

    def tool_started(self, reply: SinkReply, tool: str) -> None:
        action = ChatAction.UPLOAD_PHOTO if tool == GENERATE_IMAGE else ChatAction.TYPING
        task = asyncio.get_running_loop().create_task(self._chat_action(reply, action))
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    async def photo(self, reply: SinkReply, data: bytes, message_id: int) -> None:
        sent = await self._final_call(
            lambda: self._bot.send_photo(
                chat_id=reply.telegram_chat_id,
                photo=BufferedInputFile(data, filename="image.png"),
                reply_parameters=_reply_parameters(reply.reply_to_telegram_message_id),
            )
        )
        if sent is not None:
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                await link_telegram_message(session, reply.chat_id, message_id, sent.message_id)

    async def _chat_action(self, reply: SinkReply, action: ChatAction) -> None:
        with contextlib.suppress(TelegramAPIError):
            await self._bot.send_chat_action(reply.telegram_chat_id, action)

    # -- while the text grows ----------------------------------------------------------------

    async def _follow(self, stream: _Stream) -> None:
        reply = stream.reply
        while not stream.text:
            with contextlib.suppress(TelegramAPIError):
                await self._bot.send_chat_action(reply.telegram_chat_id, ChatAction.TYPING)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.changed.wait(), TYPING_EVERY)
        while True:
            await stream.changed.wait()
            stream.changed.clear()
            await self._show(stream)
            # Counted from the answer, not the request: a request that was slow on its way must
            # not bring the next one closer to it at Telegram's end (its limits count there).
            await asyncio.sleep(self._interval(stream))

    def _interval(self, stream: _Stream) -> float:
        if stream.use_draft:
            return self._cadence.draft_interval
        if stream.reply.is_private:
            return self._cadence.private_edit_interval
        return self._cadence.group_edit_interval

    async def _show(self, stream: _Stream) -> None:
        """One update of the growing text; a rate limit or a refusal skips it, never blocks."""
        reply = stream.reply
        parts = format_markdown(stream.text)
        if not parts or parts[0] == stream.shown:
            return
        shown = parts[0]  # a longer text is shown whole once it is final
        try:
            if stream.use_draft:
                await self._bot.send_message_draft(
                    chat_id=reply.telegram_chat_id,
                    draft_id=reply.reply_id,
                    text=shown.text,
                    entities=list(shown.entities),
                )
            elif stream.message_id is None:
                sent = await self._send(reply, shown, reply.reply_to_telegram_message_id)
                stream.message_id = sent.message_id
            else:
                if not self._group_edit_allowed(reply):
                    stream.changed.set()  # try again at the next slot
                    return
                await self._edit(stream, shown)
            stream.shown = shown
        except TelegramRetryAfter as error:
            stream.changed.set()
            await asyncio.sleep(error.retry_after)
        except TelegramBadRequest as error:
            if _is_not_modified(error):
                stream.shown = shown
            elif stream.use_draft:
                logger.info("drafts unavailable (%s); editing a sent message instead", error)
                stream.use_draft = False
                stream.changed.set()
        except TelegramAPIError as error:
            logger.warning("streaming update to Telegram failed: %s", error)

    def _group_edit_allowed(self, reply: SinkReply) -> bool:
        if reply.is_private:
            return True
        window = self._group_edits.setdefault(reply.telegram_chat_id, deque())
        now = time.monotonic()
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self._cadence.group_edits_per_minute:
            return False
        window.append(now)
        return True

    async def _stop(self, reply: SinkReply) -> _Stream:
        stream = self._streams.pop(reply.reply_id, None) or _Stream(reply, use_draft=False)
        if stream.task is not None:
            stream.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream.task
        return stream

    # -- the final text ----------------------------------------------------------------------

    async def _deliver(self, stream: _Stream, text: str) -> list[int | None]:
        """Every part of the final text; returns the Telegram message id of each part, in order
        (None where one could not be sent)."""
        reply = stream.reply
        parts = format_markdown(text) or [TelegramText(text, ())]
        sent: list[int | None] = []
        for index, part in enumerate(parts):
            if index == 0 and stream.message_id is not None:
                await self._final_call(partial(self._edit_final, stream, part))
                sent.append(stream.message_id)
                continue
            reply_to = reply.reply_to_telegram_message_id if index == 0 else None
            message = await self._final_call(partial(self._send, reply, part, reply_to))
            sent.append(None if message is None else message.message_id)
        return sent

    async def _edit_final(self, stream: _Stream, part: TelegramText) -> None:
        try:
            await self._edit(stream, part)
        except TelegramBadRequest as error:
            if not _is_not_modified(error):
                raise

    async def _edit(self, stream: _Stream, part: TelegramText) -> None:
        await self._bot.edit_message_text(
            text=part.text,
            entities=list(part.entities),
            chat_id=stream.reply.telegram_chat_id,
            message_id=stream.message_id,
        )

    async def _send(
        self, reply: SinkReply, part: TelegramText, reply_to: int | None
    ) -> TelegramMessage:
        return await self._bot.send_message(
            chat_id=reply.telegram_chat_id,
            text=part.text,
            entities=list(part.entities),
            reply_parameters=_reply_parameters(reply_to),
        )

    @staticmethod
    async def _final_call(call: Callable[[], Awaitable[T]]) -> T | None:
        """A call whose result must reach the user: waited out through 429s."""
        for _ in range(FINAL_ATTEMPTS):
            try:
                return await call()
            except TelegramRetryAfter as error:
                await asyncio.sleep(error.retry_after)
            except TelegramAPIError as error:
                logger.warning("delivering a reply to Telegram failed: %s", error)
                return None
        return None


def _reply_parameters(reply_to: int | None) -> ReplyParameters | None:
    if not reply_to:
        return None
    return ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
