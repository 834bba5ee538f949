"""Knowledge in one process: the embeddings client, and each assistant's vectors cached in
memory for the version of its knowledge they were read at."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from llm.embeddings import EmbeddingsClient, Vectors

# Assistants whose vectors are kept; the least recently used one goes first.
CACHED_ASSISTANTS = 32
# Replies being written whose sources are remembered (a reply that failed is never taken).
REMEMBERED_REPLIES = 1024


@dataclass(frozen=True, slots=True)
class VectorSet:
    """An assistant's chunk ids and their normalised vectors, row for row, as they were at
    `version`: its share token (random: an id SQLite reuses after a delete names another
    assistant) and its knowledge_version."""

    version: tuple[str, int]
    chunk_ids: npt.NDArray[np.int64] = field(repr=False)
    vectors: Vectors = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReplySources:
    """What a reply was given to answer from (services.knowledge.answering)."""

    labels: list[str]  # "Title › Section", source n at index n - 1
    cost_micros: int  # of embedding the question


@dataclass(slots=True)
class KnowledgeRuntime:
    embeddings: EmbeddingsClient
    _vectors: OrderedDict[int, VectorSet] = field(default_factory=OrderedDict)
    _sources: OrderedDict[int, ReplySources] = field(default_factory=OrderedDict)

    @property
    def model_id(self) -> str:
        return self.embeddings.model.id

    def cached_vectors(self, assistant_id: int, version: tuple[str, int]) -> VectorSet | None:
        cached = self._vectors.get(assistant_id)
        if cached is None or cached.version != version:
            return None
        self._vectors.move_to_end(assistant_id)
        return cached

    def cache_vectors(self, assistant_id: int, vectors: VectorSet) -> None:
        self._vectors[assistant_id] = vectors
        self._vectors.move_to_end(assistant_id)
        while len(self._vectors) > CACHED_ASSISTANTS:
            self._vectors.popitem(last=False)

    def remember_sources(self, reply_id: int, sources: ReplySources) -> None:
        """Until the reply ends."""
        self._sources[reply_id] = sources
        while len(self._sources) > REMEMBERED_REPLIES:
            self._sources.popitem(last=False)

    def take_sources(self, reply_id: int) -> ReplySources | None:
        return self._sources.pop(reply_id, None)

    async def close(self) -> None:
        await self.embeddings.close()
