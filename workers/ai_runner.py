"""Runs AI reply jobs: claims them (one process each), streams, persists, recovers.

A process runs at most `concurrency` replies at once. While a reply streams, its deltas go to
the chat's sockets coalesced (one frame per ~50 ms, never more behind the provider), its text
so far is saved with a heartbeat every second, and a cancellation stops the upstream request.
A reply whose process died (no heartbeat for `stale_after`) is run again once, then failed.

A front door: each step opens its own unit of work and calls `services.ai.jobs` in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import read_session, unit_of_work
from core.envelope import Envelope, encode_envelope, encode_frame
from core.errors import AppError
from llm.base import CompletionRequest, LLMError, Provider, TextDelta, Usage
from llm.catalogue import ModelInfo
from llm.tokens import estimate_tokens
from services import frames
from services.ai import jobs
from services.ai.context import prompt_tokens
from services.ai.jobs import SinkReply
from services.ai.runtime import AiRuntime
from wiring.process import Process

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
    usage: Usage | None = None


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


class AiRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        ai: AiRuntime,
        *,
        concurrency: int = 8,
        stale_after: float = 30.0,
        heartbeat_interval: float = 1.0,
        coalesce_seconds: float = 0.05,
        poll_interval: float = 1.0,
        surfaces: frozenset[str] = frozenset({"app"}),
        sink: ReplySink | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._broker = broker
        self.ai = ai
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

    async def _execute(self, reply_id: int) -> None:
        async with read_session(self._sessionmaker) as session:
            job = await jobs.load_claimed(
                session, self.ai, reply_id, to_telegram=self._sink is not None
            )
        live = LiveReply(reply_id, job.chat_id, job.members, sink=job.sink)
        if job.cancel_requested:
            live.cancel.set()
        self._live[reply_id] = live
        if live.sink is not None and self._sink is not None:
            self._sink.started(live.sink)
        try:
            started = frames.ai_reply_started(
                reply_id,
                live.chat_id,
                reply_to_message_id=job.trigger_message_id,
                model=job.model.id,
            )
            await self._publish(live, started)
            try:
                await self._stream(live, job.model, job.request)
            except Cancelled:
                await self._finish(live, job.model, job.request, cancelled=True)
                return
            except LLMError as exc:
                await self._fail(reply_id, exc.code, exc.message)
                return
            await self._finish(live, job.model, job.request, cancelled=False)
        finally:
            self._live.pop(reply_id, None)

    async def _stream(self, live: LiveReply, model: ModelInfo, request: CompletionRequest) -> None:
        provider = self.ai.catalogue.provider_for(model)
        flusher = asyncio.create_task(self._flush_forever(live))
        beater = asyncio.create_task(self._beat_forever(live))
        consumer = asyncio.create_task(self._consume(live, provider, request))
        cancelled = asyncio.create_task(live.cancel.wait())
        try:
            await asyncio.wait({consumer, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
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

    async def _consume(
        self, live: LiveReply, provider: Provider, request: CompletionRequest
    ) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                async for event in provider.stream(request):
                    if isinstance(event, TextDelta):
                        live.text += event.text
                        await self._text_arrived(live)
                    elif isinstance(event, Usage):
                        live.usage = event
                return
            except LLMError as exc:
                if not exc.retryable or live.text or attempt == MAX_ATTEMPTS - 1:
                    raise
                delay = min(exc.retry_after or 0.5 * 2**attempt, MAX_RETRY_DELAY)
                logger.info("AI reply %s: %s, retrying in %.1fs", live.reply_id, exc.code, delay)
                await asyncio.sleep(delay)

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
        self, live: LiveReply, model: ModelInfo, request: CompletionRequest, *, cancelled: bool
    ) -> None:
        text = live.text.strip()
        if not text and not cancelled:
            await self._fail(live.reply_id, "upstream_error", "The model returned no text")
            return
        usage = live.usage or Usage(
            input_tokens=prompt_tokens(request), output_tokens=estimate_tokens(live.text)
        )
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            message_ids, text = await jobs.finish(
                session, self.ai, live.reply_id, model, usage, text=live.text, cancelled=cancelled
            )
        if live.sink is not None and self._sink is not None:
            await self._sink.finished(live.sink, text.strip(), message_ids)

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
                self.ai.quota,
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


def start_runner(
    process: Process, *, surfaces: frozenset[str], sink: ReplySink | None = None
) -> AiRunner | None:
    """This process's runner of reply jobs, None without an AI. `surfaces`: which replies it
    runs ("app", "telegram": the latter only where the bot runs, with its `sink`)."""
    if process.ai is None:
        return None
    settings = process.settings
    runner = AiRunner(
        process.sessionmaker,
        process.broker,
        process.ai,
        concurrency=settings.ai_max_concurrent_replies,
        stale_after=settings.ai_reply_stale_after,
        surfaces=surfaces,
        sink=sink,
    )
    if settings.ai_runner_enabled:
        runner.start()
    return runner
