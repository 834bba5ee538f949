"""Runs AI reply jobs: claims them (one process each), streams, persists, recovers.

A process runs at most `concurrency` replies at once. While a reply streams, its deltas go to
the chat's sockets coalesced (one frame per ~50 ms, never more behind the provider), its text
so far is saved with a heartbeat every second, and a cancellation stops the upstream request.
A reply whose process died (no heartbeat for `stale_after`) is run again once, then failed.
When the model calls tools (`services.ai.tools`), the runner runs them, tells the chat
(`ai_reply_tool`), and asks the model again with their results, the text going on in the same
reply; an image job ("/image") draws one picture and posts it, without a model to stream.

A front door: each step opens its own unit of work and calls `services.ai.jobs` in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import read_session, unit_of_work
from core.envelope import Envelope, encode_envelope, encode_frame
from core.errors import AppError
from core.storage import Storage
from llm.base import (
    ChatTurn,
    CompletionRequest,
    LLMError,
    Provider,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from llm.catalogue import ModelInfo
from llm.tokens import estimate_tokens
from models import AiJobKind
from services import frames
from services.ai import jobs, tools, voice
from services.ai.context import prompt_tokens
from services.ai.jobs import ClaimedJob, SinkReply
from services.ai.runtime import AiRuntime
from services.media.config import MediaConfig
from wiring.process import Process
from workers.ai_senses import Senses, Speech, SpeechFailed

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # per stream, while nothing has been produced yet
MAX_RETRY_DELAY = 10.0


@dataclass(slots=True)
class LiveReply:
    reply_id: int
    chat_id: int
    members: set[int]
    sink: SinkReply | None = None  # where else it streams (a Telegram chat)
    text: str = ""
    flushed: int = 0  # characters already sent as deltas
    flushed_at: float = 0.0  # time.monotonic() of the last delta sent
    pending: asyncio.Event = field(default_factory=asyncio.Event)  # text waits to be flushed
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    streaming_over: asyncio.Event = field(default_factory=asyncio.Event)
    usage: Usage | None = None  # summed over the model's turns
    tool_task: asyncio.Task[ToolResult] | None = None  # a tool call being run
    drawn: int = 0  # images the tool posted: the reply stands without text


class Cancelled(Exception):
    pass


class ReplySink(Protocol):
    """Streams replies into another surface (Telegram). Calls return quickly: slow work (rate
    limits, retries) happens in the sink's own tasks, except in `finished`, which returns once
    the final text is delivered."""

    def started(self, reply: SinkReply) -> None: ...

    def progress(self, reply: SinkReply, text: str) -> None: ...

    async def finished(self, reply: SinkReply, text: str, message_ids: list[int]) -> None: ...

    async def failed(self, reply: SinkReply, code: str, message: str) -> None: ...

    def tool_started(self, reply: SinkReply, tool: str) -> None:
        """A tool runs (drawing: an image is on its way)."""

    async def photo(self, reply: SinkReply, data: bytes, message_id: int) -> None:
        """The AI posted an image (our message `message_id`); returns once it is delivered."""

    async def spoken(
        self, reply: SinkReply, speech: Speech | SpeechFailed, message_id: int | None
    ) -> None:
        """The answer's voice note, our `message_id` (or why there is none)."""


class AiRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        ai: AiRuntime,
        storage: Storage,
        media: MediaConfig,
        *,
        concurrency: int = 8,
        stale_after: float = 30.0,
        heartbeat_interval: float = 1.0,
        coalesce_seconds: float = 0.05,
        poll_interval: float = 1.0,
        surfaces: frozenset[str] = frozenset({"app"}),
        sink: ReplySink | None = None,
        senses: Senses | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._senses = senses
        self._broker = broker
        self.ai = ai
        self._storage = storage
        self._media = media
        self._surfaces = surfaces
        self._sink = sink
        self._concurrency = concurrency
        self._claimed: set[int] = set()  # the jobs this runner claimed and still runs
        self._stale_after = stale_after
        # A live reply must beat well within `stale_after`, or a sweep takes it for dead.
        self._heartbeat_interval = min(heartbeat_interval, stale_after / 4)
        self._coalesce = coalesce_seconds
        self._poll_interval = poll_interval
        self._node = uuid.uuid4().hex[:16]
        self._wake = asyncio.Event()
        self._live: dict[int, LiveReply] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._remove_listener = broker.add_listener(self._on_envelope)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run_forever(), name="ai-runner")

    async def close(self) -> None:
        self._remove_listener()
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_envelope(self, envelope: Envelope) -> None:
        reply_id = jobs.woken_reply_id(envelope)
        if reply_id is None:
            return
        live = self._live.get(reply_id)
        if live is not None:
            self._spawn(self._check_cancel(live))
        self._wake.set()

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_forever(self) -> None:
        last_sweep = 0.0
        while True:
            try:
                if time.monotonic() - last_sweep > self._stale_after / 3:
                    last_sweep = time.monotonic()
                    await self._recover_stale()
                while len(self._claimed) < self._concurrency:
                    reply_id = await self._claim()
                    if reply_id is None:
                        break
                    self._claimed.add(reply_id)
                    self._spawn(self._run_claimed(reply_id))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("AI runner loop failed; continuing")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def _run_claimed(self, reply_id: int) -> None:
        try:
            await self._execute(reply_id)
        except LLMError as exc:  # before streaming: the model went away, the chat is gone
            await self._fail(reply_id, exc.code, exc.message)
        except AppError as exc:  # at the end: the chat was deleted, or the AI removed from it
            await self._fail(reply_id, exc.code, exc.message)
        except Exception:
            logger.exception("AI reply %s crashed", reply_id)
            await self._fail(reply_id, "internal_error", "The reply failed unexpectedly")
        finally:
            self._claimed.discard(reply_id)
            self._wake.set()

    # -- claiming and recovery ------------------------------------------------------------------

    async def _claim(self) -> int | None:
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            return await jobs.claim(session, self._node, self._surfaces)

    async def _recover_stale(self) -> None:
        """Replies whose process stopped beating: run once more, or fail with a clear code."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._stale_after)
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            requeued, failing = await jobs.requeue_stale(
                session, cutoff, running_here=self._claimed
            )
        for reply_id in failing:
            await self._fail(
                reply_id,
                "interrupted",
                "The server answering this reply stopped; please try again",
                only_if_stale_before=cutoff,
            )
        if requeued or failing:
            self._wake.set()

    # -- running one reply ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _beating(self, reply_id: int) -> AsyncIterator[None]:
        """A job's slow steps outside its stream (hearing, speaking) keep it alive."""
        over = asyncio.Event()

        async def beat() -> None:
            while not over.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(over.wait(), self._heartbeat_interval)
                    return
                async with unit_of_work(self._sessionmaker, self._broker) as session:
                    await jobs.beat(session, reply_id, self._node, None)

        beater = asyncio.create_task(beat())
        try:
            yield
        finally:
            over.set()  # stopped, not cancelled: see `_stream`
            await beater

    async def _execute(self, reply_id: int) -> None:
        unheard: LLMError | None = None
        if self._senses is not None:
            async with self._beating(reply_id):
                heard = await self._senses.hear(reply_id)
            if heard is True:
                return  # a transcription job: done
            unheard = heard if isinstance(heard, LLMError) else None
        async with read_session(self._sessionmaker) as session:
            job = await jobs.load_claimed(
                session, self.ai, self._storage, reply_id, to_telegram=self._sink is not None
            )
        live = LiveReply(reply_id, job.chat_id, job.members, sink=job.sink)
        if job.cancel_requested:
            live.cancel.set()
        self._live[reply_id] = live
        try:
            if unheard is not None:  # the voice note it answers: its asker hears why not
                await self._fail(reply_id, unheard.code, unheard.message)
                return
            started = frames.ai_reply_started(
                reply_id,
                live.chat_id,
                reply_to_message_id=job.trigger_message_id,
                model=job.model.id,
            )
            await self._publish(live, started)
            if job.kind == AiJobKind.IMAGE:
                await self._draw_job(live, job)
                return
            if live.sink is not None and self._sink is not None:
                self._sink.started(live.sink)
            if job.refusal is not None:
                live.text = job.refusal
                await self._flush(live)
                await self._finish(live, job.model, job.request, cancelled=False, usage=Usage(0, 0))
                return
            try:
                await self._stream(live, job)
            except Cancelled:
                await self._finish(live, job.model, job.request, cancelled=True)
                return
            except LLMError as exc:
                await self._fail(reply_id, exc.code, exc.message)
                return
            await self._finish(live, job.model, job.request, cancelled=False)
        finally:
            self._live.pop(reply_id, None)

    async def _draw_job(self, live: LiveReply, job: ClaimedJob) -> None:
        """ "/image <prompt>": one picture, posted by the AI as the reply. It beats while it
        draws, and a cancellation stops the drawing (nothing is posted or charged)."""
        if live.sink is not None and self._sink is not None:
            self._sink.tool_started(live.sink, tools.GENERATE_IMAGE)
        beater = asyncio.create_task(self._beat_forever(live))
        drawing = asyncio.create_task(self._draw(job.model, job.image_prompt))
        cancelled = asyncio.create_task(live.cancel.wait())
        try:
            await asyncio.wait({drawing, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            live.streaming_over.set()
            for task in (drawing, cancelled):
                if not task.done():
                    task.cancel()
            await asyncio.gather(beater, cancelled, return_exceptions=True)
        if drawing.cancelled() or not drawing.done():
            await asyncio.gather(drawing, return_exceptions=True)
            await self._finish(live, job.model, job.request, cancelled=True, usage=Usage(0, 0))
            return
        try:
            data = drawing.result()
        except LLMError as exc:
            await self._fail(live.reply_id, exc.code, exc.message)
            return
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            message_ids = await jobs.finish_image(
                session, self.ai, self._storage, self._media, live.reply_id, job.model, data
            )
        if live.sink is not None and self._sink is not None:
            await self._sink.photo(live.sink, data, message_ids[0])

    async def _draw(self, model: ModelInfo, prompt: str) -> bytes:
        client = self.ai.catalogue.media_client(model)
        return await client.generate_image(model, prompt)

    async def _stream(self, live: LiveReply, job: ClaimedJob) -> None:
        flusher = asyncio.create_task(self._flush_forever(live))
        beater = asyncio.create_task(self._beat_forever(live))
        consumer = asyncio.create_task(self._converse(live, job))
        cancelled = asyncio.create_task(live.cancel.wait())
        try:
            await asyncio.wait({consumer, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
                if live.tool_task is not None:  # its unit of work ends, not cancelled inside
                    await asyncio.gather(live.tool_task, return_exceptions=True)
                raise Cancelled
            consumer.result()
        finally:
            # The heartbeat is stopped, not cancelled: cancelling it inside its transaction
            # would leave SQLite's write lock held by a connection that cannot roll back.
            live.streaming_over.set()
            for task in (flusher, cancelled):
                task.cancel()
            await asyncio.gather(flusher, beater, cancelled, return_exceptions=True)
            await self._flush(live)

    async def _converse(self, live: LiveReply, job: ClaimedJob) -> None:
        """The model's turns: each one that calls tools gets their results and is asked again,
        up to `tools.MAX_TOOL_STEPS` times; then the calls get an error result, to answer."""
        provider = self.ai.catalogue.provider_for(job.model)
        request = job.request
        for step in range(tools.MAX_TOOL_STEPS + 1):
            start = len(live.text)
            calls = await self._consume(live, provider, request)
            if not calls:
                return
            if step == tools.MAX_TOOL_STEPS:
                logger.info("AI reply %s: tool calls past the last step", live.reply_id)
                return
            if step < tools.MAX_TOOL_STEPS - 1:
                results = [await self._run_tool_shielded(live, job, call) for call in calls]
            else:
                results = [
                    ToolResult(call.id, "No more tools in this answer; answer now.", True)
                    for call in calls
                ]
            said = ChatTurn("assistant", live.text[start:], tool_calls=tuple(calls))
            answers = ChatTurn("user", "", tool_results=tuple(results))
            request = dataclasses.replace(request, turns=[*request.turns, said, answers])

    async def _consume(
        self, live: LiveReply, provider: Provider, request: CompletionRequest
    ) -> list[ToolCall]:
        """One turn of the model: its text goes on the reply's; returns the tools it calls."""
        start = len(live.text)
        for attempt in range(MAX_ATTEMPTS):
            calls: list[ToolCall] = []
            try:
                async for event in provider.stream(request):
                    if isinstance(event, TextDelta):
                        if len(live.text) == start and live.text and not live.text[-1].isspace():
                            live.text += "\n\n"  # after a tool step, a new paragraph
                        live.text += event.text
                        await self._text_arrived(live)
                    elif isinstance(event, ToolCall):
                        calls.append(event)
                    else:
                        live.usage = _add(live.usage, event)
                return calls
            except LLMError as exc:
                if not exc.retryable or len(live.text) > start or attempt == MAX_ATTEMPTS - 1:
                    raise
                delay = min(exc.retry_after or 0.5 * 2**attempt, MAX_RETRY_DELAY)
                logger.info("AI reply %s: %s, retrying in %.1fs", live.reply_id, exc.code, delay)
                await asyncio.sleep(delay)
        return []

    async def _run_tool_shielded(
        self, live: LiveReply, job: ClaimedJob, call: ToolCall
    ) -> ToolResult:
        """A cancelled reply waits for its tool (`_stream`) rather than cancel it inside its
        unit of work."""
        live.tool_task = asyncio.create_task(self._run_tool(live, job, call))
        try:
            return await asyncio.shield(live.tool_task)
        finally:
            live.tool_task = None

    async def _run_tool(self, live: LiveReply, job: ClaimedJob, call: ToolCall) -> ToolResult:
        """One tool call; whatever goes wrong comes back to the model as an error result."""
        await self._publish_tool(live, call, "started")
        if live.sink is not None and self._sink is not None:
            self._sink.tool_started(live.sink, call.name)
        message_id = None
        try:
            if call.name == tools.SEARCH_HISTORY:
                async with unit_of_work(self._sessionmaker, self._broker) as session:
                    result = await tools.search_history(
                        session, call, chat_id=job.chat_id, requester_id=job.requester_id
                    )
            elif call.name == tools.GENERATE_IMAGE and (model := tools.image_model(self.ai)):
                data = await self._draw(model, tools.image_prompt(call))
                async with unit_of_work(self._sessionmaker, self._broker) as session:
                    message_id = await tools.post_drawn(
                        session, self.ai, self._storage, self._media, live.reply_id, data
                    )
                live.drawn += 1
                if live.sink is not None and self._sink is not None:
                    await self._sink.photo(live.sink, data, message_id)
                result = ToolResult(call.id, "The image is drawn and posted in the chat.")
            else:
                raise tools.ToolFailure(f"There is no tool {call.name!r}")
        except (tools.ToolFailure, AppError, LLMError) as exc:
            reason = str(exc) if isinstance(exc, tools.ToolFailure) else exc.message
            logger.info("AI reply %s: tool %s failed: %s", live.reply_id, call.name, reason)
            await self._publish_tool(live, call, "failed")
            return ToolResult(call.id, reason, is_error=True)
        await self._publish_tool(live, call, "finished", message_id=message_id)
        return result

    async def _publish_tool(
        self, live: LiveReply, call: ToolCall, status: str, *, message_id: int | None = None
    ) -> None:
        frame = frames.ai_reply_tool(
            live.reply_id,
            live.chat_id,
            tool=call.name,
            call_id=call.id,
            status=status,
            message_id=message_id,
        )
        await self._publish(live, frame)

    async def _text_arrived(self, live: LiveReply) -> None:
        """The first text goes out at once, then at most one delta per `coalesce`. Flushed
        here, not only by the flusher: an SDK parses every chunk of a network read (hundreds
        of tokens) without yielding, and the flusher would wait for all of them."""
        if live.flushed and time.monotonic() - live.flushed_at < self._coalesce:
            live.pending.set()  # the flusher sends it if no more text comes soon
            return
        await self._flush(live)
        await asyncio.sleep(0)  # the sockets' writers send it before parsing goes on

    async def _flush_forever(self, live: LiveReply) -> None:
        """Text that waits for more sends itself `coalesce` after the last delta."""
        while True:
            await live.pending.wait()
            await asyncio.sleep(live.flushed_at + self._coalesce - time.monotonic())
            live.pending.clear()
            await self._flush(live)

    async def _flush(self, live: LiveReply) -> None:
        if len(live.text) == live.flushed:
            return
        offset, live.flushed = live.flushed, len(live.text)
        live.flushed_at = time.monotonic()
        delta = frames.ai_reply_delta(
            live.reply_id, live.chat_id, text=live.text[offset : live.flushed], offset=offset
        )
        await self._publish(live, delta)
        if live.sink is not None and self._sink is not None:
            self._sink.progress(live.sink, live.text)

    async def _beat_forever(self, live: LiveReply) -> None:
        while not live.streaming_over.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.streaming_over.wait(), self._heartbeat_interval)
                return
            await self._check_cancel(live, save_text=True)

    async def _check_cancel(self, live: LiveReply, *, save_text: bool = False) -> None:
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            text = live.text if save_text else None
            cancel = await jobs.beat(session, live.reply_id, self._node, text)
        if cancel:
            live.cancel.set()

    async def _publish(self, live: LiveReply, frame: dict[str, object]) -> None:
        await self._broker.publish(
            encode_envelope(live.members, encode_frame(frame), chat_id=live.chat_id)
        )

    # -- endings --------------------------------------------------------------------------------

    async def _finish(
        self,
        live: LiveReply,
        model: ModelInfo,
        request: CompletionRequest,
        *,
        cancelled: bool,
        usage: Usage | None = None,
    ) -> None:
        text = live.text.strip()
        if not text and not cancelled and not live.drawn:
            await self._fail(live.reply_id, "upstream_error", "The model returned no text")
            return
        usage = (
            usage
            or live.usage
            or Usage(input_tokens=prompt_tokens(request), output_tokens=estimate_tokens(live.text))
        )
        speech: Speech | SpeechFailed | None = None
        if self._senses is not None and not cancelled:
            async with self._beating(live.reply_id):
                speech = await self._senses.speak(live.reply_id, live.chat_id, text)
        voice_id = None
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            message_ids, final_text = await jobs.finish(
                session, self.ai, live.reply_id, model, usage, text=live.text, cancelled=cancelled
            )
            if isinstance(speech, Speech):
                voice_id = await voice.post_voice_reply(
                    session, self.ai, live.reply_id, speech.media_id, speech.words
                )
        if live.sink is not None and self._sink is not None:
            await self._sink.finished(live.sink, final_text.strip(), message_ids)
            if speech is not None:
                await self._sink.spoken(live.sink, speech, voice_id)

    async def _fail(
        self,
        reply_id: int,
        code: str,
        message: str,
        *,
        only_if_stale_before: datetime | None = None,
    ) -> None:
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            failed = await jobs.fail(
                session,
                self.ai,
                reply_id,
                code,
                message,
                only_if_stale_before=only_if_stale_before,
            )
        live = self._live.get(reply_id)
        if failed and live is not None and live.sink is not None and self._sink is not None:
            await self._sink.failed(live.sink, code, message)

    # -- what the API asks of a running reply ------------------------------------------------------

    def live_text(self, reply_id: int) -> str | None:
        live = self._live.get(reply_id)
        return live.text if live is not None else None

    def cancel_locally(self, reply_id: int) -> bool:
        live = self._live.get(reply_id)
        if live is None:
            return False
        live.cancel.set()
        return True


def _add(total: Usage | None, more: Usage) -> Usage:
    if total is None:
        return more
    return Usage(total.input_tokens + more.input_tokens, total.output_tokens + more.output_tokens)


def start_runner(
    process: Process, *, surfaces: frozenset[str], sink: ReplySink | None = None
) -> AiRunner | None:
    """This process's runner of reply jobs, None without an AI. `surfaces`: which replies it
    runs ("app", "telegram": the latter only where the bot runs, with its `sink`)."""
    if process.ai is None:
        return None
    settings = process.settings
    senses = Senses(
        process.sessionmaker,
        process.broker,
        process.ai,
        process.storage,
        process.media,
        speech_voice=settings.speech_voice,
    )
    runner = AiRunner(
        process.sessionmaker,
        process.broker,
        process.ai,
        process.storage,
        process.media,
        concurrency=settings.ai_max_concurrent_replies,
        stale_after=settings.ai_reply_stale_after,
        surfaces=surfaces,
        sink=sink,
        senses=senses,
    )
    if settings.ai_runner_enabled:
        runner.start()
    return runner
