"""`python -m bench.fake_llm --port N`: a minimal OpenAI-compatible vendor for the AI scenario.

`POST /v1/chat/completions` streams `tokens` chunks of one token each (OpenAI's SSE wire format,
with usage), `delay` seconds apart (0: as fast as it can). It runs in its own process, so that
it shares an event loop with neither the API nor the client, and records for every request when
it arrived, when the first and the last token were written: `GET /stats`. `POST /config` sets
`tokens` and `delay`; `POST /reset` forgets the recorded requests. `POST /v1/embeddings`
answers small deterministic vectors (the fuzz run's knowledge routes use them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Json = dict[str, Any]


class FakeVendor:
    def __init__(self) -> None:
        self.tokens = 1000
        self.delay = 0.0
        self.records: list[Json] = []
        self._ids = 0

    async def configure(self, request: Request) -> Response:
        body: Json = await request.json()
        self.tokens = int(body.get("tokens", self.tokens))
        self.delay = float(body.get("delay", self.delay))
        return JSONResponse({"tokens": self.tokens, "delay": self.delay})

    async def reset(self, request: Request) -> Response:
        self.records = []
        return JSONResponse({"ok": True})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.records)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def embeddings(self, request: Request) -> Response:
        """OpenAI's embeddings answer: one small deterministic vector per input (from its
        digest), so the knowledge routes run for real."""
        body: Json = await request.json()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": [
                    byte / 255 - 0.5 for byte in hashlib.sha256(str(text).encode()).digest()[:16]
                ],
            }
            for index, text in enumerate(texts)
        ]
        tokens = sum(len(str(text).split()) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def completions(self, request: Request) -> Response:
        received_ns = time.time_ns()
        body: Json = await request.json()
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "only streaming is faked"}}, 400)
        self._ids += 1
        record: Json = {"received_ns": received_ns, "tokens": self.tokens, "delay": self.delay}
        self.records.append(record)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _Stream(
            f"chatcmpl-bench{self._ids}", str(body.get("model")), self, record, include_usage
        )


class _Stream(Response):
    def __init__(
        self, completion_id: str, model: str, vendor: FakeVendor, record: Json, usage: bool
    ) -> None:
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.init_headers({"cache-control": "no-cache"})
        self._id = completion_id
        self._model = model
        self._tokens = vendor.tokens
        self._delay = vendor.delay
        self._record = record
        self._usage = usage

    def _chunk(self, delta: Json, finish: str | None = None, usage: Json | None = None) -> bytes:
        chunk: Json = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model,
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if self._usage:
            chunk["usage"] = usage
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def body(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await body(self._chunk({"role": "assistant", "content": ""}))
        for index in range(self._tokens):
            if index and self._delay:
                await asyncio.sleep(self._delay)
            await body(self._chunk({"content": f"{index % 1000:03d} "}))
            if index == 0:
                self._record["first_token_ns"] = time.time_ns()
        self._record["last_token_ns"] = time.time_ns()
        await body(self._chunk({}, "stop"))
        if self._usage:
            usage = {"prompt_tokens": 100, "completion_tokens": self._tokens}
            usage["total_tokens"] = usage["prompt_tokens"] + self._tokens
            await body(self._chunk({}, usage=usage))
        await body(b"data: [DONE]\n\n", more=False)
        self._record["done_ns"] = time.time_ns()


def create_app() -> Starlette:
    vendor = FakeVendor()
    return Starlette(
        routes=[
            Route("/v1/chat/completions", vendor.completions, methods=["POST"]),
            Route("/v1/embeddings", vendor.embeddings, methods=["POST"]),
            Route("/config", vendor.configure, methods=["POST"]),
            Route("/reset", vendor.reset, methods=["POST"]),
            Route("/stats", vendor.stats, methods=["GET"]),
            Route("/health", vendor.health, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
