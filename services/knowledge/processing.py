"""A document's way to `ready`, step by step, each step in the caller's unit of work (the
knowledge worker, `workers.knowledge`, makes the calls and the vendor requests between them).

processing: claimed by one worker (which beats while it works) -> its text extracted and split
into chunks -> the chunks embedded batch by batch -> ready; or failed with an error. A document
whose worker stopped beating is claimed again, up to MAX_ATTEMPTS times, then failed. When the
embeddings model changes, ready documents are embedded again from their stored chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.envelope import encode_envelope, encode_frame
from core.outbox import stage
from llm.embeddings import Embedded
from models import Assistant, DocumentStatus, KnowledgeChunk, KnowledgeDocument
from services import frames
from services.billing.config import BillingConfig
from services.knowledge import billing
from services.knowledge.chunking import Chunk
from services.knowledge.documents import bump_version
from services.knowledge.extraction import SourceFormat

MAX_ATTEMPTS = 3
EMBED_BATCH = 64  # chunks per vendor request and per unit of work


@dataclass(frozen=True, slots=True)
class ClaimedDocument:
    id: int
    assistant_id: int
    owner_id: int
    source_format: SourceFormat
    media_id: int | None
    source_text: str | None
    has_chunks: bool
    attempts: int


async def _owner_id(session: AsyncSession, assistant_id: int) -> int:
    return int(
        (
            await session.scalars(select(Assistant.owner_id).where(Assistant.id == assistant_id))
        ).one()
    )


async def publish_progress(session: AsyncSession, document: KnowledgeDocument) -> None:
    """The owner's sockets hear of the document's state once this unit of work commits."""
    frame = frames.knowledge_progress(
        document.assistant_id,
        document.id,
        status=document.status.value,
        chunks=document.chunks,
        embedded_chunks=document.embedded_chunks,
        error=document.error,
    )
    owner_id = await _owner_id(session, document.assistant_id)
    stage(session, encode_envelope([owner_id], encode_frame(frame)))


async def claim(session: AsyncSession, node: str, stale_before: datetime) -> ClaimedDocument | None:
    """The oldest document waiting (or whose worker stopped beating before `stale_before`),
    now claimed by `node`; skips one another worker is claiming at the same moment."""
    candidate = (
        select(KnowledgeDocument.id)
        .where(
            KnowledgeDocument.status == DocumentStatus.PROCESSING,
            KnowledgeDocument.attempts < MAX_ATTEMPTS,
            (KnowledgeDocument.claimed_by.is_(None))
            | (KnowledgeDocument.heartbeat_at < stale_before),
        )
        .order_by(KnowledgeDocument.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    document = await session.scalar(
        update(KnowledgeDocument)
        .where(
            KnowledgeDocument.id == candidate,
            KnowledgeDocument.status == DocumentStatus.PROCESSING,
        )
        .values(
            claimed_by=node,
            heartbeat_at=datetime.now(UTC),
            attempts=KnowledgeDocument.attempts + 1,
        )
        .returning(KnowledgeDocument)
    )
    if document is None:
        return None
    has_chunks = await session.scalar(
        select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == document.id).limit(1)
    )
    return ClaimedDocument(
        id=document.id,
        assistant_id=document.assistant_id,
        owner_id=await _owner_id(session, document.assistant_id),
        source_format=SourceFormat(document.source_format),
        media_id=document.media_id,
        source_text=document.source_text,
        has_chunks=has_chunks is not None,
        attempts=document.attempts,
    )


async def abandoned(session: AsyncSession, stale_before: datetime) -> list[int]:
    """Documents whose workers stopped beating MAX_ATTEMPTS times: for the caller to `fail`."""
    return list(
        await session.scalars(
            select(KnowledgeDocument.id).where(
                KnowledgeDocument.status == DocumentStatus.PROCESSING,
                KnowledgeDocument.attempts >= MAX_ATTEMPTS,
                KnowledgeDocument.heartbeat_at < stale_before,
            )
        )
    )


async def beat(session: AsyncSession, document_id: int, node: str) -> bool:
    """The document is still being processed by `node`; False when it is not (deleted, or
    taken over)."""
    beaten = await session.scalar(
        update(KnowledgeDocument)
        .where(
            KnowledgeDocument.id == document_id,
            KnowledgeDocument.claimed_by == node,
            KnowledgeDocument.status == DocumentStatus.PROCESSING,
        )
        .values(heartbeat_at=datetime.now(UTC))
        .returning(KnowledgeDocument.id)
    )
    return beaten is not None


async def _claimed(session: AsyncSession, document_id: int, node: str) -> KnowledgeDocument | None:
    document = await session.get(KnowledgeDocument, document_id, with_for_update=True)
    if (
        document is None
        or document.claimed_by != node
        or document.status is not DocumentStatus.PROCESSING
    ):
        return None
    return document


async def store_chunks(
    session: AsyncSession, document_id: int, node: str, chunks: list[Chunk]
) -> bool:
    """The extracted text's chunks, not embedded yet; False when the document is no longer
    this worker's."""
    document = await _claimed(session, document_id, node)
    if document is None:
        return False
    session.add_all(
        KnowledgeChunk(
            document_id=document.id,
            assistant_id=document.assistant_id,
            position=position,
            section=chunk.section,
            text=chunk.text,
        )
        for position, chunk in enumerate(chunks)
    )
    document.chunks = len(chunks)
    document.embedded_chunks = 0
    await session.flush()
    await publish_progress(session, document)
    return True


async def next_batch(session: AsyncSession, document_id: int) -> list[tuple[int, str]]:
    """Chunks of the document still without a vector, in order."""
    rows = await session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.text)
        .where(KnowledgeChunk.document_id == document_id, KnowledgeChunk.embedding.is_(None))
        .order_by(KnowledgeChunk.position)
        .limit(EMBED_BATCH)
    )
    return [(int(chunk_id), text) for chunk_id, text in rows]


async def store_vectors(
    session: AsyncSession,
    document_id: int,
    node: str,
    chunk_ids: list[int],
    embedded: Embedded,
) -> bool:
    document = await _claimed(session, document_id, node)
    if document is None:
        return False
    vectors = embedded.vectors.astype("<f4")
    for chunk_id, vector in zip(chunk_ids, vectors, strict=True):
        await session.execute(
            update(KnowledgeChunk)
            .where(KnowledgeChunk.id == chunk_id)
            .values(embedding=np.ascontiguousarray(vector).tobytes())
        )
    document.embedded_chunks = int(
        await session.scalar(
            select(func.count()).where(
                KnowledgeChunk.document_id == document.id, KnowledgeChunk.embedding.is_not(None)
            )
        )
        or 0
    )
    document.cost_micros += embedded.cost_micros
    document.heartbeat_at = datetime.now(UTC)
    await session.flush()
    await publish_progress(session, document)
    return True


async def finish(
    session: AsyncSession,
    config: BillingConfig,
    document_id: int,
    node: str,
    *,
    model_id: str,
    run_cost: int,
) -> None:
    """Every chunk has its vector: the document is ready, and the owner pays for this run."""
    document = await _claimed(session, document_id, node)
    if document is None:
        return
    document.status = DocumentStatus.READY
    document.embedding_model = model_id
    document.claimed_by = None
    owner_id = await _owner_id(session, document.assistant_id)
    await billing.settle(
        session, config, owner_id, document, run_cost, f"embedding:{document.id}:{node}"
    )
    await bump_version(session, document.assistant_id)
    await session.flush()
    await publish_progress(session, document)


async def fail(
    session: AsyncSession,
    config: BillingConfig,
    document_id: int,
    error: str,
    *,
    node: str | None,
    run_cost: int = 0,
) -> None:
    """The document failed with `error` (its chunks go); this run's embedding is paid for.
    With `node`, only while that worker holds it."""
    document = await session.get(KnowledgeDocument, document_id, with_for_update=True)
    if document is None or document.status is not DocumentStatus.PROCESSING:
        return
    if node is not None and document.claimed_by != node:
        return
    await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document.id))
    document.status = DocumentStatus.FAILED
    document.error = error
    document.chunks = document.embedded_chunks = 0
    document.claimed_by = None
    owner_id = await _owner_id(session, document.assistant_id)
    await billing.settle(
        session, config, owner_id, document, run_cost, f"embedding:{document.id}:{node}"
    )
    await bump_version(session, document.assistant_id)
    await session.flush()
    await publish_progress(session, document)


async def mark_for_reembedding(session: AsyncSession, model_id: str) -> int:
    """Ready documents embedded by another model go back to processing, their chunks kept and
    their vectors dropped (vectors of two models cannot be compared). Returns how many."""
    documents = list(
        await session.scalars(
            select(KnowledgeDocument)
            .where(
                KnowledgeDocument.status == DocumentStatus.READY,
                KnowledgeDocument.embedding_model != model_id,
            )
            .with_for_update()
        )
    )
    for document in documents:
        await session.execute(
            update(KnowledgeChunk)
            .where(KnowledgeChunk.document_id == document.id)
            .values(embedding=None)
        )
        document.status = DocumentStatus.PROCESSING
        document.embedded_chunks = 0
        document.claimed_by = None
        document.attempts = 0
        await bump_version(session, document.assistant_id)
        await session.flush()
        await publish_progress(session, document)
    return len(documents)
