"""Embeddings through an OpenAI-compatible `POST /v1/embeddings` (OpenAI, or a local server by
base URL), with the official `openai` SDK. Vectors come back float32 and L2-normalised, so that
a dot product is the cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llm.base import LLMError
from llm.catalogue import ModelInfo, cost_micros

if TYPE_CHECKING:
    import openai

# Inputs per request: OpenAI takes up to 2048; a local server is happier with fewer.
BATCH_SIZE = 64

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: Vectors = field(repr=False)  # one normalised row per input
    input_tokens: int  # as the vendor counted them
    cost_micros: int


def normalised(matrix: Vectors) -> Vectors:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: Vectors = (matrix / norms).astype(np.float32)
    return result


class EmbeddingsClient:
    def __init__(
        self, model: ModelInfo, *, api_key: str | None, base_url: str | None, timeout: float
    ) -> None:
        if model.kind != "embedding":
            raise ValueError(f"model {model.id!r} is not an embedding model")
        self.model = model
        self._api_key, self._base_url, self._timeout = api_key, base_url, timeout
        self._client: openai.AsyncOpenAI | None = None

    def _sdk(self) -> openai.AsyncOpenAI:
        """The SDK takes up to seconds to import: only when the first request is made."""
        if self._client is None:
            import openai

            from llm.openai_provider import NO_API_KEY

            self._client = openai.AsyncOpenAI(
                api_key=self._api_key or NO_API_KEY,
                base_url=self._base_url,
                max_retries=2,
                timeout=self._timeout,
            )
        return self._client

    async def embed(self, texts: Sequence[str]) -> Embedded:
        """The texts' vectors in order, in batches of BATCH_SIZE; raises LLMError."""
        import openai

        # The chat provider's mapping of the SDK's errors, shared rather than copied.
        from llm.openai_provider import api_error, connection_error

        client = self._sdk()
        rows: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), BATCH_SIZE):
            batch = list(texts[start : start + BATCH_SIZE])
            try:
                response = await client.embeddings.create(
                    model=self.model.vendor_model, input=batch
                )
            except openai.APIConnectionError as exc:
                raise connection_error(exc, started=False) from exc
            except openai.APIError as exc:
                raise api_error(exc) from exc
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise LLMError("upstream_error", "The embeddings server answered for other inputs")
            rows.extend(item.embedding for item in data)
            tokens += response.usage.prompt_tokens
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        return Embedded(normalised(matrix), tokens, cost_micros(self.model, tokens, 0))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
