"""Hybrid retrieval from an assistant's knowledge: full-text search (PostgreSQL `tsvector` with
`ts_rank`, SQLite FTS5 with bm25) and vector similarity (numpy: cosine = dot of normalised
vectors, all of the assistant's chunks compared in-process), fused by reciprocal rank fusion.
The best TOP_K chunks that fit a token budget are the sources of an answer."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from llm.embeddings import Vectors
from llm.tokens import estimate_tokens
from models import Assistant, KnowledgeChunk, KnowledgeDocument
from models.message import FTS_CONFIG
from services.knowledge.runtime import KnowledgeRuntime, VectorSet

TOP_K = 6
CANDIDATES = 30  # from each of the two searches, before fusion
SOURCES_MAX_TOKENS = 3000
RRF_K = 60  # the usual constant of reciprocal rank fusion
_WORD = re.compile(r"\w+")
_MAX_QUERY_WORDS = 32


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: int
    document_id: int
    document_title: str
    section: str | None
    text: str
    score: float  # the fused score: higher is better

    @property
    def label(self) -> str:
        """ "Title › Section", how a source is named in the prompt and in footnotes."""
        return f"{self.document_title} › {self.section}" if self.section else self.document_title


@dataclass(frozen=True, slots=True)
class Retrieval:
    passages: list[Passage]
    query_tokens: int
    cost_micros: int  # of embedding the question
    seconds: float


def query_words(question: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(question.lower()):
        seen.setdefault(word)
    return list(seen)[:_MAX_QUERY_WORDS]


async def full_text_ranking(
    session: AsyncSession, assistant_id: int, question: str, limit: int = CANDIDATES
) -> list[int]:
    """Chunk ids best first, matching any word of the question."""
    words = query_words(question)
    if not words:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # The stored tsvector and its GIN index (migration 0012).
        config: ColumnElement[Any] = literal_column(FTS_CONFIG)
        query = func.to_tsquery(config, " | ".join(words))
        vector: ColumnElement[Any] = literal_column("knowledge_chunks.text_search")
        rows = await session.scalars(
            select(KnowledgeChunk.id)
            .where(KnowledgeChunk.assistant_id == assistant_id, vector.bool_op("@@")(query))
            .order_by(func.ts_rank(vector, query).desc(), KnowledgeChunk.id)
            .limit(limit)
        )
        return list(rows)
    match = " OR ".join(f'"{word}"' for word in words)
    rows = await session.scalars(
        text(
            "SELECT rowid FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH :match"
            " AND assistant_id = :assistant_id ORDER BY bm25(knowledge_chunks_fts), rowid"
            " LIMIT :limit"
        ),
        {"match": match, "assistant_id": assistant_id, "limit": limit},
    )
    return [int(row) for row in rows]


async def load_vectors(
    session: AsyncSession, knowledge: KnowledgeRuntime, assistant: Assistant
) -> VectorSet:
    """The assistant's embedded chunks, from the cache while its knowledge is unchanged."""
    assistant_id = assistant.id
    version = (assistant.share_token, assistant.knowledge_version)
    cached = knowledge.cached_vectors(assistant_id, version)
    if cached is not None:
        return cached
    rows = list(
        await session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.embedding)
            .where(
                KnowledgeChunk.assistant_id == assistant_id, KnowledgeChunk.embedding.is_not(None)
            )
            .order_by(KnowledgeChunk.id)
        )
    )
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    blobs = [row[1] for row in rows if row[1] is not None]
    dimensions = len(blobs[0]) // 4 if blobs else 0
    vectors: Vectors = (
        np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimensions)
        if blobs and all(len(blob) == dimensions * 4 for blob in blobs)
        else np.zeros((0, 0), dtype=np.float32)
    )
    loaded = VectorSet(version, ids if len(vectors) else ids[:0], vectors)
    knowledge.cache_vectors(assistant_id, loaded)
    return loaded


def vector_ranking(vectors: VectorSet, query: Vectors, limit: int = CANDIDATES) -> list[int]:
    if not len(vectors.chunk_ids) or vectors.vectors.shape[1] != query.shape[0]:
        return []
    scores = vectors.vectors @ query
    count = min(limit, len(scores))
    best = np.argpartition(-scores, count - 1)[:count]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [int(vectors.chunk_ids[index]) for index in best]


def fuse(*rankings: list[int]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each ranking adds 1 / (RRF_K + rank) to a chunk's score."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


async def has_knowledge(session: AsyncSession, assistant_id: int) -> bool:
    found = await session.scalar(
        select(KnowledgeDocument.id)
        .where(
            KnowledgeDocument.assistant_id == assistant_id,
            KnowledgeDocument.embedded_chunks > 0,
        )
        .limit(1)
    )
    return found is not None


async def retrieve(
    session: AsyncSession,
    knowledge: KnowledgeRuntime,
    assistant: Assistant,
    question: str,
    *,
    top_k: int = TOP_K,
    max_tokens: int = SOURCES_MAX_TOKENS,
) -> Retrieval:
    """The passages to answer `question` from (raises LLMError when the question cannot be
    embedded)."""
    started = time.perf_counter()
    embedded = await knowledge.embeddings.embed([question])
    passages = await passages_for(
        session,
        knowledge,
        assistant,
        question,
        embedded.vectors[0],
        top_k=top_k,
        max_tokens=max_tokens,
    )
    return Retrieval(
        passages, embedded.input_tokens, embedded.cost_micros, time.perf_counter() - started
    )


async def passages_for(
    session: AsyncSession,
    knowledge: KnowledgeRuntime,
    assistant: Assistant,
    question: str,
    query: Vectors,
    *,
    top_k: int = TOP_K,
    max_tokens: int = SOURCES_MAX_TOKENS,
) -> list[Passage]:
    """Retrieval once the question is embedded (`query`): both searches, fused."""
    vectors = await load_vectors(session, knowledge, assistant)
    fused = fuse(
        await full_text_ranking(session, assistant.id, question),
        vector_ranking(vectors, query),
    )
    return await _passages(session, fused, top_k, max_tokens)


async def _passages(
    session: AsyncSession, fused: list[tuple[int, float]], top_k: int, max_tokens: int
) -> list[Passage]:
    candidates = fused[: top_k * 2]
    if not candidates:
        return []
    rows = {
        chunk.id: (chunk, title)
        for chunk, title in await session.execute(
            select(KnowledgeChunk, KnowledgeDocument.title)
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(KnowledgeChunk.id.in_([chunk_id for chunk_id, _ in candidates]))
        )
    }
    passages: list[Passage] = []
    budget = max_tokens
    for chunk_id, score in candidates:
        if chunk_id not in rows:
            continue
        chunk, title = rows[chunk_id]
        cost = estimate_tokens(chunk.text)
        if cost > budget:
            continue
        budget -= cost
        passages.append(
            Passage(chunk.id, chunk.document_id, title, chunk.section, chunk.text, score)
        )
        if len(passages) == top_k:
            break
    return passages
