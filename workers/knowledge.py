"""The knowledge worker: each API process runs one (see webapp_api.context). It takes documents
waiting in `processing` (claimed one at a time across processes, see
services.knowledge.processing), extracts their text in a thread, chunks and embeds them, and
tells the owner's sockets how far it got (`knowledge_progress`). At start and every
REEMBED_INTERVAL it sends documents embedded by another model than EMBEDDINGS_MODEL back to be
embedded again. A front door: each step is a unit of work of its own, vendor calls between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.db import read_session, unit_of_work
from core.envelope import Envelope
from core.storage import Storage, blob_key
from llm.base import LLMError
from models import Media
from services.billing.config import BillingConfig
from services.knowledge import processing
from services.knowledge.chunking import split_into_chunks
from services.knowledge.documents import KNOWLEDGE_SERVICE
from services.knowledge.extraction import ExtractionError, extract_text
from services.knowledge.runtime import KnowledgeRuntime

logger = logging.getLogger(__name__)

POLL_INTERVAL = 5.0
HEARTBEAT_INTERVAL = 5.0
STALE_AFTER = 60.0
REEMBED_INTERVAL = 600.0


class KnowledgeWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        storage: Storage,
        knowledge: KnowledgeRuntime,
        billing: BillingConfig,
        *,
        max_source_bytes: int,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._broker = broker
        self._storage = storage
        self._knowledge = knowledge
        self._billing = billing
        self._max_source_bytes = max_source_bytes
        self._stale_after = stale_after
        self._node = uuid.uuid4().hex[:16]
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._remove_listener = broker.add_listener(self._on_envelope)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="knowledge-worker")

    async def close(self) -> None:
        self._remove_listener()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_envelope(self, envelope: Envelope) -> None:
        if envelope.service == KNOWLEDGE_SERVICE:
            self._wake.set()

    async def _run_forever(self) -> None:
        last_reembed = -REEMBED_INTERVAL
        while True:
            try:
                if time.monotonic() - last_reembed >= REEMBED_INTERVAL:
                    last_reembed = time.monotonic()
                    async with unit_of_work(self._sessionmaker, self._broker) as session:
                        await processing.mark_for_reembedding(session, self._knowledge.model_id)
                while await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("knowledge worker loop failed; continuing")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL)

    async def run_once(self) -> bool:
        """Processes one waiting document; False when none waits."""
        stale_before = datetime.now(UTC) - timedelta(seconds=self._stale_after)
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            for document_id in await processing.abandoned(session, stale_before):
                await processing.fail(
                    session,
                    self._billing,
                    document_id,
                    "Processing was interrupted too often",
                    node=None,
                )
            claimed = await processing.claim(session, self._node, stale_before)
        if claimed is None:
            return False
        beater = asyncio.create_task(self._beat_forever(claimed.id))
        try:
            await self._process(claimed)
        except Exception:
            logger.exception("knowledge document %s crashed", claimed.id)
            await self._fail(claimed.id, "Processing failed unexpectedly", 0)
        finally:
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater
        return True

    async def _beat_forever(self, document_id: int) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                await processing.beat(session, document_id, self._node)

    async def _fail(self, document_id: int, error: str, run_cost: int) -> None:
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            await processing.fail(
                session, self._billing, document_id, error, node=self._node, run_cost=run_cost
            )

    async def _process(self, claimed: processing.ClaimedDocument) -> None:
        if not claimed.has_chunks:
            try:
                data = await self._source(claimed)
                text = await asyncio.to_thread(extract_text, claimed.source_format, data)
                chunks = await asyncio.to_thread(split_into_chunks, text)
            except ExtractionError as exc:
                await self._fail(claimed.id, str(exc), 0)
                return
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                if not await processing.store_chunks(session, claimed.id, self._node, chunks):
                    return
        run_cost = 0
        while True:
            async with read_session(self._sessionmaker) as session:
                batch = await processing.next_batch(session, claimed.id)
            if not batch:
                break
            try:
                embedded = await self._knowledge.embeddings.embed([text for _, text in batch])
            except LLMError as exc:
                await self._fail(claimed.id, f"Embedding failed: {exc.message}", run_cost)
                return
            run_cost += embedded.cost_micros
            async with unit_of_work(self._sessionmaker, self._broker) as session:
                stored = await processing.store_vectors(
                    session, claimed.id, self._node, [chunk_id for chunk_id, _ in batch], embedded
                )
            if not stored:
                return
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            await processing.finish(
                session,
                self._billing,
                claimed.id,
                self._node,
                model_id=self._knowledge.model_id,
                run_cost=run_cost,
            )

    async def _source(self, claimed: processing.ClaimedDocument) -> bytes:
        """The document's bytes: its pasted text, or its uploaded file (bounded)."""
        if claimed.source_text is not None:
            return claimed.source_text.encode()
        async with read_session(self._sessionmaker) as session:
            media = await session.get(Media, claimed.media_id) if claimed.media_id else None
        if media is None:
            raise ExtractionError("The uploaded file is gone")
        data = bytearray()
        async for chunk in self._storage.read(blob_key(media.sha256)):
            data += chunk
            if len(data) > self._max_source_bytes:
                raise ExtractionError("The file is too large")
        return bytes(data)
