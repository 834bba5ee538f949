"""A fake LLM vendor: OpenAI's `POST /v1/chat/completions` and Anthropic's `POST /v1/messages`
in their real wire formats (JSON, SSE streams, error bodies and statuses), served by a real
uvicorn on a loopback port so that the official SDKs talk to it unpatched.

Each request takes the next scripted `FakeReply` (a default one when none is left) and is
recorded, its prompt parsed back from either wire format (system, turns with their images,
tool calls and results, the tools offered). A reply may end with tool calls (`FakeToolCall`),
streamed as the vendor does: OpenAI's `tool_calls` deltas with the arguments in fragments and
finish_reason "tool_calls", Anthropic's `tool_use` blocks with `input_json_delta`s and
stop_reason "tool_use". One server runs for the session (starting one per test would cost
0.2 s); the `fake_llm` fixture gives each test a fresh FakeLLM: its own script, requests and
disconnects.

The senses' endpoints take the script alike: `POST /v1/audio/transcriptions` (the real multipart,
its file recorded) answers the reply's text as the transcript; `POST /v1/audio/speech` answers
real Ogg/Opus audio (made once with ffmpeg); `POST /v1/images/generations` answers a real PNG
as base64, refusing `response_format` for gpt-image-* and answering a URL to DALL·E unless
asked for b64_json, as OpenAI does. A reply's error status answers any of them.

`POST /v1/embeddings` takes no script: it answers deterministic hashed bag-of-words vectors, so
that texts sharing words are similar (float lists, or base64 as the openai SDK asks by default).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import itertools
import json
import math
import re
import shutil
import struct
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from llm.base import ChatTurn, ImagePart, ToolCall, ToolResult, ToolSpec
from llm.tokens import estimate_prompt_tokens, estimate_tokens
from tests.support.server import FakeServer

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedFile:
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    json: Json  # the JSON body, or a multipart form's fields
    # The prompt parsed back from the wire. OpenAI's separate tool messages and the user message
    # after them are one turn; its results carry no error flag (the text says "Error: ").
    system: str = ""
    turns: list[ChatTurn] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)
    file: RecordedFile | None = None  # a multipart upload (transcriptions)

    @property
    def images(self) -> list[ImagePart]:
        """Every image of the prompt, in order, decoded from the wire."""
        return [image for turn in self.turns for image in turn.images]


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    name: str
    # A string is sent as it is: malformed JSON, or an argument object split unusually.
    arguments: Json | str = field(default_factory=dict)
    id: str | None = None  # default: a new one in the vendor's style (call_..., toolu_...)

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class FakeReply:
    text: str = "Hello from the fake model."  # also a transcription's transcript
    # Calls the model makes after its text (leave `text` empty for calls alone); streams only.
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    chunk_size: int = 3  # characters per delta
    delay: float = 0.0  # seconds between chunks
    input_tokens: int | None = None  # reported usage; default: estimated from the request
    output_tokens: int | None = None
    status: int = 200  # an error status, answered before any streaming
    # The vendor's error code (OpenAI) or type (Anthropic), e.g. "overloaded_error",
    # "rate_limit_error", "insufficient_quota"; "context_length_exceeded" scripts a prompt
    # that does not fit on both endpoints.
    error_type: str | None = None
    error_message: str | None = None  # instead of the vendor's usual wording
    retry_after: float | None = None
    fail_after_chunks: int | None = None  # an error event in the stream after N chunks
    drop_after_chunks: int | None = None  # the connection closes abruptly after N chunks
    gate: asyncio.Event | None = None  # streaming waits for it before the first chunk
    pings: bool = True  # Anthropic ping events
    report_usage: bool = True  # False: an OpenAI-compatible server that ignores include_usage


class _Stream(Protocol):
    """One vendor's SSE frames."""

    def opening(self) -> list[bytes]: ...  # before the gate
    def start(self) -> list[bytes]: ...  # after the gate, before the first chunk
    def delta(self, text: str) -> bytes: ...
    def failure(self) -> bytes: ...
    def closing(self) -> list[bytes]: ...


class FakeLLM:
    """One test's view of the fake vendor: its script, and what the server saw."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self._replies: deque[FakeReply] = deque()
        self._ids = itertools.count(1)
        self._closed = asyncio.Event()

    def script(self, *replies: FakeReply) -> None:
        """Queue replies; each request consumes one."""
        self._replies.extend(replies)

    def close(self) -> None:
        """End the streams still open (a gate never set, a long delay)."""
        self._closed.set()

    async def _record(self, request: Request, parse: _PromptParser) -> RecordedRequest:
        body: Json = await request.json()
        system, turns, tools = parse(body)
        recorded = RecordedRequest(
            request.url.path, self._headers(request), body, system, turns, tools
        )
        self.requests.append(recorded)
        return recorded

    def _headers(self, request: Request) -> dict[str, str]:
        return {name.lower(): value for name, value in request.headers.items()}

    def _next_reply(self) -> FakeReply:
        return self._replies.popleft() if self._replies else FakeReply()

    def _next_id(self) -> str:
        return f"{next(self._ids):024x}"

    def _calls(self, reply: FakeReply, prefix: str) -> list[_Call]:
        return [
            _Call(call.id or f"{prefix}{self._next_id()}", call.name, call.arguments_json)
            for call in reply.tool_calls
        ]

    async def openai(self, request: Request) -> Response:
        recorded = await self._record(request, _openai_prompt)
        body = recorded.json
        reply = self._next_reply()
        if reply.status != 200:
            return _openai_error(reply)
        usage = _usage(reply, recorded)
        completion_id = f"chatcmpl-{self._next_id()}"
        model = str(body.get("model", ""))
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _openai_usage(usage),
                    "system_fingerprint": "fp_fake",
                }
            )
        include_usage = reply.report_usage and bool(
            (body.get("stream_options") or {}).get("include_usage")
        )
        stream = _OpenAIStream(
            completion_id,
            model,
            reply,
            usage,
            self._calls(reply, "call_"),
            include_usage=include_usage,
        )
        return _EventStream(self, reply, stream, {"x-request-id": f"req_{self._next_id()}"})

    async def anthropic(self, request: Request) -> Response:
        recorded = await self._record(request, _anthropic_prompt)
        body = recorded.json
        reply = self._next_reply()
        if reply.status != 200:
            return _anthropic_error(reply, f"req_{self._next_id()}")
        usage = _usage(reply, recorded)
        message_id = f"msg_{self._next_id()}"
        model = str(body.get("model", ""))
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": reply.text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
                }
            )
        stream = _AnthropicStream(message_id, model, reply, usage, self._calls(reply, "toolu_"))
        return _EventStream(self, reply, stream, {"request-id": f"req_{self._next_id()}"})

    async def transcription(self, request: Request) -> Response:
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return _openai_error(FakeReply(status=400, error_message="'file' is required."))
            data = await upload.read()
            fields: Json = {name: value for name, value in form.items() if isinstance(value, str)}
            uploaded = RecordedFile(upload.filename, upload.content_type, data)
        self.requests.append(
            RecordedRequest(request.url.path, self._headers(request), fields, file=uploaded)
        )
        reply = self._next_reply()
        if reply.status != 200:
            return _openai_error(reply)
        return JSONResponse({"text": reply.text})

    async def speech(self, request: Request) -> Response:
        body: Json = await request.json()
        self.requests.append(RecordedRequest(request.url.path, self._headers(request), body))
        reply = self._next_reply()
        if reply.status != 200:
            return _openai_error(reply)
        if body.get("response_format") != "opus":
            message = "The fake vendor speaks Ogg/Opus only."
            return _openai_error(FakeReply(status=400, error_message=message))
        return Response(_speech_audio(), media_type="audio/ogg")

    async def image_generation(self, request: Request) -> Response:
        body: Json = await request.json()
        self.requests.append(RecordedRequest(request.url.path, self._headers(request), body))
        reply = self._next_reply()
        if reply.status != 200:
            return _openai_error(reply)
        model = str(body.get("model", ""))
        response_format = body.get("response_format")
        if model.startswith("gpt-image") and response_format is not None:
            return _openai_error(
                FakeReply(
                    status=400,
                    error_type="unknown_parameter",
                    error_message="Unknown parameter: 'response_format'.",
                )
            )
        width, _, height = str(body.get("size", "1024x1024")).partition("x")
        image: Json = {"b64_json": base64.b64encode(_png(int(width), int(height))).decode()}
        if not model.startswith("gpt-image"):
            image["revised_prompt"] = body.get("prompt")
            if response_format != "b64_json":
                image = {"url": f"{self.base_url}/images/{self._next_id()}.png"}
        return JSONResponse({"created": int(time.time()), "data": [image]})


@functools.cache
def _speech_audio() -> bytes:
    """Half a second of a tone as Ogg/Opus, made once per test session."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the fake vendor's speech needs ffmpeg (Debian package ffmpeg)")
    return subprocess.run(
        [
            ffmpeg, "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5",
            "-c:a", "libopus", "-b:a", "16k", "-f", "ogg", "pipe:1",
        ],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip


@functools.cache
def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(out, "PNG")
    return out.getvalue()


class _EventStream(Response):
    """An SSE response driven by a FakeReply, which notices the client going away."""

    def __init__(
        self, fake: FakeLLM, reply: FakeReply, stream: _Stream, headers: dict[str, str]
    ) -> None:
        # As StreamingResponse does: no body, so no content-length header.
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.init_headers({"cache-control": "no-cache", **headers})
        self._fake = fake
        self._reply = reply
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        produce = asyncio.ensure_future(self._produce(send))
        disconnect = asyncio.ensure_future(_disconnected(receive))
        closing = asyncio.ensure_future(self._fake._closed.wait())
        done, _ = await asyncio.wait(
            {produce, disconnect, closing}, return_when=asyncio.FIRST_COMPLETED
        )
        interrupted = produce not in done
        if interrupted and disconnect in done:
            self._fake.disconnects += 1
        for task in (produce, disconnect, closing):
            task.cancel()
        await asyncio.gather(produce, disconnect, closing, return_exceptions=True)
        if not interrupted:
            produce.result()  # a failure of the fake itself must show
        elif disconnect not in done:
            # The test is over: end the response so that uvicorn can shut down.
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _produce(self, send: Send) -> None:
        reply = self._reply
        stream = self._stream

        async def body(*frames: bytes) -> None:
            for frame in frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})

        async def end() -> None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        await body(*stream.opening())
        if reply.gate is not None:
            await reply.gate.wait()
        await body(*stream.start())
        pieces = [
            reply.text[start : start + reply.chunk_size]
            for start in range(0, len(reply.text), reply.chunk_size)
        ]
        for sent in range(len(pieces) + 1):
            if reply.drop_after_chunks == sent:
                # Returning without ending the response makes uvicorn close the connection.
                return
            if reply.fail_after_chunks == sent:
                await body(stream.failure())
                await end()
                return
            if sent == len(pieces):
                break
            if sent and reply.delay:
                await asyncio.sleep(reply.delay)
            await body(stream.delta(pieces[sent]))
        await body(*stream.closing())
        await end()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _sse(data: Json, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(data)}\n\n".encode()


@dataclass(frozen=True, slots=True)
class _Call:
    """A scripted tool call as streamed: its id chosen, its arguments as JSON text."""

    id: str
    name: str
    arguments: str

    def fragments(self) -> list[str]:
        """The arguments in three pieces, as vendors stream them."""
        step = max(1, -(-len(self.arguments) // 3))
        return [
            self.arguments[start : start + step] for start in range(0, len(self.arguments), step)
        ]


def _usage(reply: FakeReply, recorded: RecordedRequest) -> tuple[int, int]:
    input_tokens = reply.input_tokens
    if input_tokens is None:
        input_tokens = estimate_prompt_tokens(recorded.system, recorded.turns, recorded.tools)
    output_tokens = reply.output_tokens
    if output_tokens is None:
        output_tokens = estimate_tokens(reply.text) + sum(
            estimate_tokens(call.name) + estimate_tokens(call.arguments_json)
            for call in reply.tool_calls
        )
    return input_tokens, output_tokens


class _PromptParser(Protocol):
    def __call__(self, body: Json) -> tuple[str, list[ChatTurn], list[ToolSpec]]: ...


def _text(content: object) -> str:
    """The text of a message's content: a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type", "text") == "text"
        )
    return ""


def _data_url_image(url: str) -> ImagePart:
    header, _, data = url.partition(",")
    mime_type = header.removeprefix("data:").removesuffix(";base64")
    return ImagePart(base64.b64decode(data, validate=True), mime_type)


def _openai_prompt(body: Json) -> tuple[str, list[ChatTurn], list[ToolSpec]]:
    system: list[str] = []
    turns: list[ChatTurn] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(_text(content))
        elif role == "assistant":
            calls = tuple(
                ToolCall(
                    call["id"],
                    call["function"]["name"],
                    json.loads(call["function"]["arguments"] or "{}"),
                )
                for call in message.get("tool_calls") or []
            )
            turns.append(ChatTurn("assistant", _text(content), tool_calls=calls))
        elif role == "tool":
            result = ToolResult(message["tool_call_id"], _text(content))
            if turns and turns[-1].role == "user" and turns[-1].tool_results:
                previous = turns.pop()
                result_turn = ChatTurn("user", "", tool_results=(*previous.tool_results, result))
            else:
                result_turn = ChatTurn("user", "", tool_results=(result,))
            turns.append(result_turn)
        elif role == "user":
            parts = content if isinstance(content, list) else []
            images = tuple(
                _data_url_image(part["image_url"]["url"])
                for part in parts
                if part.get("type") == "image_url"
            )
            results: tuple[ToolResult, ...] = ()
            if (
                turns
                and turns[-1].role == "user"
                and turns[-1].tool_results
                and not turns[-1].content
            ):
                results = turns.pop().tool_results
            turns.append(ChatTurn("user", _text(content), images=images, tool_results=results))
    tools = [
        ToolSpec(
            tool["function"]["name"],
            tool["function"].get("description", ""),
            tool["function"].get("parameters", {}),
        )
        for tool in body.get("tools") or []
    ]
    return "\n".join(system), turns, tools


def _anthropic_turn(role: str, content: object) -> ChatTurn:
    blocks = content if isinstance(content, list) else []
    images = tuple(
        ImagePart(
            base64.b64decode(block["source"]["data"], validate=True), block["source"]["media_type"]
        )
        for block in blocks
        if block.get("type") == "image"
    )
    calls = tuple(
        ToolCall(block["id"], block["name"], block["input"])
        for block in blocks
        if block.get("type") == "tool_use"
    )
    results = tuple(
        ToolResult(
            block["tool_use_id"], _text(block.get("content", "")), bool(block.get("is_error"))
        )
        for block in blocks
        if block.get("type") == "tool_result"
    )
    text = _text(content)
    if role == "assistant":
        return ChatTurn("assistant", text, tool_calls=calls)
    return ChatTurn("user", text, images=images, tool_results=results)


def _anthropic_prompt(body: Json) -> tuple[str, list[ChatTurn], list[ToolSpec]]:
    turns = [
        _anthropic_turn(message.get("role"), message.get("content"))
        for message in body.get("messages") or []
        if message.get("role") in ("user", "assistant")
    ]
    tools = [
        ToolSpec(tool["name"], tool.get("description", ""), tool.get("input_schema", {}))
        for tool in body.get("tools") or []
    ]
    return _text(body.get("system", "")), turns, tools


def _openai_usage(usage: tuple[int, int]) -> Json:
    return {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[0] + usage[1],
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _retry_headers(reply: FakeReply) -> dict[str, str]:
    if reply.retry_after is None:
        return {}
    return {"retry-after": f"{reply.retry_after:g}"}


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-fake***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
        "Please try again in 20s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_OPENAI_CONTEXT_MESSAGE = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "131072 tokens. Please reduce the length of the messages."
)


def _openai_error(reply: FakeReply) -> Response:
    fallback = _OPENAI_ERRORS[400 if reply.status < 500 else 500]
    error_type, code, message = _OPENAI_ERRORS.get(reply.status, fallback)
    if reply.error_type == "context_length_exceeded":
        message = _OPENAI_CONTEXT_MESSAGE
    if reply.error_type == "insufficient_quota":
        error_type = "insufficient_quota"
    error = {
        "message": reply.error_message or message,
        "type": error_type,
        "param": "messages" if reply.error_type == "context_length_exceeded" else None,
        "code": reply.error_type or code,
    }
    return JSONResponse({"error": error}, status_code=reply.status, headers=_retry_headers(reply))


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_ANTHROPIC_MESSAGES = {
    "invalid_request_error": "messages: text content blocks must be non-empty",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: claude-unknown",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}
_ANTHROPIC_CONTEXT_MESSAGE = "prompt is too long: 210000 tokens > 200000 maximum"


def _anthropic_error_body(reply: FakeReply, status: int) -> Json:
    if reply.error_type == "context_length_exceeded":
        error_type, message = "invalid_request_error", _ANTHROPIC_CONTEXT_MESSAGE
    else:
        error_type = reply.error_type or _ANTHROPIC_TYPES.get(status, "api_error")
        message = _ANTHROPIC_MESSAGES.get(error_type, "Internal server error")
    return {
        "type": "error",
        "error": {"type": error_type, "message": reply.error_message or message},
    }


def _anthropic_error(reply: FakeReply, request_id: str) -> Response:
    body = {**_anthropic_error_body(reply, reply.status), "request_id": request_id}
    headers = {"request-id": request_id, **_retry_headers(reply)}
    return JSONResponse(body, status_code=reply.status, headers=headers)


@dataclass
class _OpenAIStream:
    completion_id: str
    model: str
    reply: FakeReply
    usage: tuple[int, int]
    calls: list[_Call]
    include_usage: bool
    created: int = field(default_factory=lambda: int(time.time()))

    def _chunk(self, choices: list[Json], usage: Json | None = None) -> bytes:
        chunk: Json = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return _sse(chunk)

    def _choice(self, delta: Json, finish_reason: str | None = None) -> Json:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def opening(self) -> list[bytes]:
        return []

    def start(self) -> list[bytes]:
        return [self._chunk([self._choice({"role": "assistant", "content": "", "refusal": None})])]

    def delta(self, text: str) -> bytes:
        return self._chunk([self._choice({"content": text})])

    def failure(self) -> bytes:
        error = {
            "message": self.reply.error_message or "The server had an error while processing.",
            "type": self.reply.error_type or "server_error",
            "param": None,
            "code": None,
        }
        return _sse({"error": error})

    def _tool_call(self, index: int, call: _Call) -> list[bytes]:
        opening = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        return [
            self._chunk([self._choice({"tool_calls": [opening]})]),
            *(
                self._chunk(
                    [
                        self._choice(
                            {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                        )
                    ]
                )
                for part in call.fragments()
            ),
        ]

    def closing(self) -> list[bytes]:
        frames = [
            frame for index, call in enumerate(self.calls) for frame in self._tool_call(index, call)
        ]
        frames.append(self._chunk([self._choice({}, "tool_calls" if self.calls else "stop")]))
        if self.include_usage:
            frames.append(self._chunk([], _openai_usage(self.usage)))
        frames.append(b"data: [DONE]\n\n")
        return frames


@dataclass
class _AnthropicStream:
    message_id: str
    model: str
    reply: FakeReply
    usage: tuple[int, int]
    calls: list[_Call]

    @property
    def _has_text(self) -> bool:
        """A reply of tool calls alone has no text block."""
        return bool(self.reply.text or not self.calls)

    def _ping(self) -> list[bytes]:
        return [_sse({"type": "ping"}, "ping")] if self.reply.pings else []

    def opening(self) -> list[bytes]:
        message: Json = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.usage[0], "output_tokens": 1},
        }
        frames = [_sse({"type": "message_start", "message": message}, "message_start")]
        if self._has_text:
            block = {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
            frames.append(_sse(block, "content_block_start"))
        return [*frames, *self._ping()]

    def start(self) -> list[bytes]:
        return []

    def delta(self, text: str) -> bytes:
        event = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }
        return _sse(event, "content_block_delta")

    def failure(self) -> bytes:
        return _sse(_anthropic_error_body(self.reply, 529), "error")

    def _tool_use(self, index: int, call: _Call) -> list[bytes]:
        start = {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
        }
        return [
            _sse(start, "content_block_start"),
            *(
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                    "content_block_delta",
                )
                for part in ["", *call.fragments()]  # the API's first fragment is empty
            ),
            _sse({"type": "content_block_stop", "index": index}, "content_block_stop"),
        ]

    def closing(self) -> list[bytes]:
        message_delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": "tool_use" if self.calls else "end_turn",
                "stop_sequence": None,
            },
            "usage": {"output_tokens": self.usage[1]},
        }
        frames = []
        if self._has_text:
            frames.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        first = 1 if self._has_text else 0
        for offset, call in enumerate(self.calls):
            frames.extend(self._tool_use(first + offset, call))
        return [
            *frames,
            *self._ping(),
            _sse(message_delta, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]


# -- embeddings (OpenAI's POST /v1/embeddings) -------------------------------------------------
# Deterministic hashed bag-of-words vectors: texts sharing words are similar, so retrieval
# by similarity is real. Stateless: the same text always gets the same vector.

EMBEDDING_DIMENSIONS = 256
_WORD = re.compile(r"\w+")


def embedding_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def fake_vector(text: str) -> list[float]:
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in embedding_words(text):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
        vector[bucket % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


async def fake_embeddings(request: Request) -> Response:
    body: Json = await request.json()
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        error = {"message": "'input' must be a string or a list of strings", "type": "invalid"}
        return JSONResponse({"error": {**error, "param": "input", "code": None}}, 400)
    data: list[Json] = []
    for index, text in enumerate(texts):
        vector = fake_vector(text)
        embedding: object = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(max(1, len(embedding_words(text))) for text in texts)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


class FakeLLMServer(FakeServer[FakeLLM]):
    """The fake vendor's server: the vendors' endpoints, answered by the current FakeLLM
    (default replies between tests)."""

    def __init__(self) -> None:
        super().__init__(FakeLLM(""))
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/audio/transcriptions", self._transcription, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/images/generations", self._image_generation, methods=["POST"]),
                Route("/v1/embeddings", fake_embeddings, methods=["POST"]),
            ]
        )

    async def _openai(self, request: Request) -> Response:
        return await self.current.openai(request)

    async def _anthropic(self, request: Request) -> Response:
        return await self.current.anthropic(request)

    async def _transcription(self, request: Request) -> Response:
        return await self.current.transcription(request)

    async def _speech(self, request: Request) -> Response:
        return await self.current.speech(request)

    async def _image_generation(self, request: Request) -> Response:
        return await self.current.image_generation(request)

    def session(self) -> AbstractAsyncContextManager[FakeLLM]:
        """A fresh FakeLLM that takes the requests until the block ends."""
        return self.serving(FakeLLM(self.base_url))


@pytest.fixture(scope="session")
async def fake_llm_server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer().running() as server:
        yield server


@pytest.fixture
async def fake_llm(fake_llm_server: FakeLLMServer) -> AsyncIterator[FakeLLM]:
    async with fake_llm_server.session() as fake:
        yield fake
