"""`python -m bench.retrieval [--quick]`: how long knowledge retrieval takes for one assistant
with 10,000 and 50,000 chunks, on SQLite and on PostgreSQL.

Each backend gets a fresh migrated database (PostgreSQL at BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres; SQLite in a temporary file) filled directly with
synthetic chunks: ~150 words each from a vocabulary of 5,000, and random L2-normalised float32
vectors of 1,536 dimensions (text-embedding-3-small's). A question is 6 words of the
vocabulary and a random vector; what is timed is `services.knowledge.retrieval.passages_for`
(full-text search, vector similarity in numpy, rank fusion, loading the passages), the
embedding request aside. The first question loads the vectors into the process's cache (timed
apart as "cold"); the others find them there. Prints a table (p50/p95/p99 in ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from bench.cluster import DEFAULT_POSTGRES_URL, ROOT, Database, SetupError
from bench.procinfo import machine_info
from core.db import create_engine, create_sessionmaker
from core.settings import normalize_database_url
from llm.catalogue import DEFAULT_MODELS
from llm.embeddings import EmbeddingsClient, normalised
from models import (
    Assistant,
    AssistantVisibility,
    DocumentStatus,
    KnowledgeChunk,
    KnowledgeDocument,
    User,
)
from services.knowledge.retrieval import passages_for
from services.knowledge.runtime import KnowledgeRuntime

DIMENSIONS = 1536
VOCABULARY = 5000
WORDS_PER_CHUNK = 150
QUESTION_WORDS = 6
QUESTIONS = {False: 100, True: 30}
SIZES = {False: (10_000, 50_000), True: (2_000,)}
INSERT_BATCH = 2000


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    chunks: int
    cold_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    questions: int


def _words(rng: np.random.Generator, count: int) -> str:
    # Zipf-like: a few common words, a long tail, as in real text.
    ranks = np.minimum(rng.zipf(1.2, count), VOCABULARY) - 1
    return " ".join(f"w{rank}" for rank in ranks)


async def _migrate(url: str, log: Path) -> None:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "alembic", "upgrade", "head",
            cwd=ROOT, env=env, stdout=output, stderr=output,
        )  # fmt: skip
        if await process.wait() != 0:
            raise SetupError(f"alembic upgrade head failed; see {log}")


@asynccontextmanager
async def database(backend: str, chunks: int, work: Path) -> AsyncIterator[str]:
    log = work / f"{backend}-migrate.log"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{work / f'retrieval-{chunks}.db'}"
        await _migrate(url, log)
        yield url
        return
    pg = Database(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES_URL)
    await pg.create(log)
    try:
        yield pg.url
    finally:
        await pg.drop()


async def measure(backend: str, chunks: int, quick: bool, work: Path) -> Result:
    rng = np.random.default_rng(chunks)
    async with database(backend, chunks, work) as url:
        engine = create_engine(normalize_database_url(url), pool_size=2, max_overflow=0)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with sessionmaker() as session, session.begin():
                user = User(telegram_id=1, first_name="Bench")
                session.add(user)
                await session.flush()
                assistant = Assistant(
                    owner_id=user.id,
                    name="Bench",
                    instructions="",
                    visibility=AssistantVisibility.PRIVATE,
                    share_token=f"bench-{chunks}",
                )
                session.add(assistant)
                await session.flush()
                document = KnowledgeDocument(
                    assistant_id=assistant.id,
                    title="Synthetic",
                    source_format="text",
                    status=DocumentStatus.READY,
                    chunks=chunks,
                    embedded_chunks=chunks,
                )
                session.add(document)
                await session.flush()
                assistant_id, document_id = assistant.id, document.id
            for start in range(0, chunks, INSERT_BATCH):
                count = min(INSERT_BATCH, chunks - start)
                vectors = normalised(rng.standard_normal((count, DIMENSIONS), dtype=np.float32))
                rows = [
                    {
                        "document_id": document_id,
                        "assistant_id": assistant_id,
                        "position": start + i,
                        "section": f"Part {(start + i) // 100}",
                        "text": _words(rng, WORDS_PER_CHUNK),
                        "embedding": vectors[i].astype("<f4").tobytes(),
                    }
                    for i in range(count)
                ]
                async with sessionmaker() as session, session.begin():
                    await session.execute(insert(KnowledgeChunk), rows)
            model = next(m for m in DEFAULT_MODELS if m.id == "text-embedding-3-small")
            # Never called: the questions come with their vectors.
            client = EmbeddingsClient(model, api_key="unused", base_url=None, timeout=1.0)
            knowledge = KnowledgeRuntime(client)
            timings: list[float] = []
            for _ in range(QUESTIONS[quick] + 1):
                question = _words(rng, QUESTION_WORDS)
                query = normalised(rng.standard_normal((1, DIMENSIONS), dtype=np.float32))[0]
                async with sessionmaker() as session:
                    owner = await session.get(Assistant, assistant_id)
                    assert owner is not None
                    started = time.perf_counter()
                    passages = await passages_for(session, knowledge, owner, question, query)
                    timings.append((time.perf_counter() - started) * 1000)
                    assert passages, "retrieval found nothing"
            await client.close()
        finally:
            await engine.dispose()
    cold, warm = timings[0], sorted(timings[1:])
    quantiles = statistics.quantiles(warm, n=100, method="inclusive")
    return Result(
        backend,
        chunks,
        round(cold, 1),
        round(statistics.median(warm), 1),
        round(quantiles[94], 1),
        round(quantiles[98], 1),
        len(warm),
    )


def table(results: Sequence[Result]) -> str:
    lines = [
        "| backend | chunks | cold (ms) | p50 (ms) | p95 (ms) | p99 (ms) | questions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {r.backend} | {r.chunks:,} | {r.cold_ms} | {r.p50_ms} | {r.p95_ms} | {r.p99_ms}"
        f" | {r.questions} |"
        for r in results
    )
    return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 chunks, 30 questions")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args(argv)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as work:
        for backend in args.backend or ["sqlite", "postgresql"]:
            for chunks in SIZES[args.quick]:
                results.append(await measure(backend, chunks, args.quick, Path(work)))
    info = machine_info()
    sys.stdout.write(
        f"Knowledge retrieval on {info['cpu_model']} ({info['cores']} cores,"
        f" {info['memory_gib']} GiB), load average at start {info['load_average_at_start']}\n\n"
        + table(results)
        + "\n"
    )


if __name__ == "__main__":
    asyncio.run(main())
