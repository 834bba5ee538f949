"""The AI sees, searches and draws, from the Mini App, each priced through the ledger: a live API
whose AI talks to the fake vendor through the official SDKs (OpenAI and Anthropic wire formats,
streamed tool calls, image parts, image generation)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from typing import Any

import pytest
from PIL import Image

from llm.catalogue import DEFAULT_MODELS, ModelInfo, cost_micros
from services.ai.tools import MAX_TOOL_STEPS
from tests.ai.helpers import (
    follow_reply,
    group_with_ai,
    open_ai_chat,
    reassemble,
    reply_row,
    set_chat_ai,
    socket_of,
)
from tests.billing.conftest import AppFactory, catalogue_entry
from tests.billing.helpers import Sessionmaker, ledger_state
from tests.media.samples import png_bytes
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeLLMServer, FakeReply, FakeToolCall
from tests.support.ws import Frame, WsClient

GRANT = 10_000_000
SEEING = ModelInfo(
    id="seeing",
    provider="openai",
    vendor_model="seeing-1",
    display_name="Seeing",
    context_window=100_000,
    max_output_tokens=100,
    input_price=1_000_000,
    output_price=2_000_000,
    vision=True,
    tools=True,
)
CLAUDE = dataclasses.replace(
    SEEING,
    id="claude-seeing",
    provider="anthropic",
    vendor_model="claude-seeing-1",
    display_name="Claude Seeing",
)
IMAGE_MODEL = next(model for model in DEFAULT_MODELS if model.id == "gpt-image-1")


def _blind(fake_llm_server: FakeLLMServer) -> ModelInfo:
    """An OpenAI-compatible server's model without vision (nor tools)."""
    return ModelInfo(
        id="blind",
        provider="openai_compatible",
        vendor_model="blind-1",
        display_name="Blind Model",
        context_window=100_000,
        max_output_tokens=100,
        input_price=1_000_000,
        output_price=2_000_000,
        base_url=fake_llm_server.base_url + "/v1",
    )


@pytest.fixture
def start(start_app: AppFactory, fake_llm_server: FakeLLMServer) -> AppFactory:
    """`start_app` with models that see and call tools (both vendors), one that does not, and
    a grant that pays for pictures."""

    def started(**overrides: object) -> Any:
        entries = [catalogue_entry(m) for m in (SEEING, CLAUDE, _blind(fake_llm_server))]
        values: dict[str, object] = {
            "llm_models": json.dumps(entries),
            "llm_default_model": SEEING.id,
            "anthropic_api_key": "test-key",
            "anthropic_base_url": fake_llm_server.base_url,
            "billing_starting_grant_micros": GRANT,
        }
        values.update(overrides)
        return start_app(**values)

    return started


async def _upload(user: ApiUser, data: bytes, name: str = "photo.png") -> int:
    uploaded = await user.ok("POST", "/api/v1/media", files={"file": (name, data, "image/png")})
    return int(uploaded["id"])


async def _usage_charges(user: ApiUser) -> list[int]:
    page = await user.ok("GET", "/api/v1/billing/transactions")
    return [item["amount"] for item in page["items"] if item["kind"] == "usage"]


async def _reply_frames(ws: WsClient, *, messages: bool = False) -> list[Frame]:
    """The next reply's ai_reply_* frames (and with `messages`, new_message frames), in order,
    up to its end."""
    frames: list[Frame] = []
    async with asyncio.timeout(10):
        while not frames or frames[-1]["type"] not in ("ai_reply_done", "ai_reply_failed"):
            frame = await ws.recv()
            kind = str(frame.get("type", ""))
            if kind.startswith("ai_reply_") or (messages and kind == "new_message"):
                frames.append(frame)
    return frames


async def _bot_message(ws: WsClient, bot_id: int) -> Frame:
    while True:
        frame = await ws.wait_for("new_message")
        if frame["message"]["sender_id"] == bot_id:
            return frame


def _chat_requests(fake_llm: FakeLLM) -> list[Any]:
    return [r for r in fake_llm.requests if not r.path.endswith("/images/generations")]


async def test_a_photo_is_seen_by_a_vision_model_downscaled_and_charged(
    start: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(FakeReply(text="A red rectangle.", input_tokens=900, output_tokens=5))
    async with start() as app:
        alice = await app.sign_up(6101, "Alice")
        chat_id = await open_ai_chat(alice)
        media_id = await _upload(alice, png_bytes(3000, 2000, (200, 30, 30)))
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "what is this?", media_ids=[media_id])
            reply = await follow_reply(ws)
        assert reply.end["type"] == "ai_reply_done"
        (request,) = fake_llm.requests
        assert request.turns[-1].content == "what is this?"
        (image,) = request.images
        with Image.open(io.BytesIO(image.data)) as seen:
            assert seen.format == "JPEG"
            assert max(seen.size) <= 1568
            assert seen.size[0] > seen.size[1]
            red, green, blue = seen.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
            assert (red > 150, green < 80, blue < 80) == (True, True, True)
        cost = cost_micros(SEEING, 900, 5)
        assert await _usage_charges(alice) == [-cost]
    assert (await reply_row(billing_sessionmaker, reply.reply_id)).cost_micros == cost
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert (state.balance, state.reserved, state.holds) == (GRANT - cost, 0, 0)


async def test_a_photo_without_text_asks_the_ai_too(start: AppFactory, fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeReply(text="A photo of red."))
    async with start() as app:
        alice = await app.sign_up(6102, "Alice")
        chat_id = await open_ai_chat(alice)
        media_id = await _upload(alice, png_bytes())
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "", media_ids=[media_id])
            reply = await follow_reply(ws)
    assert reply.end["type"] == "ai_reply_done"
    (request,) = fake_llm.requests
    assert len(request.images) == 1
    assert request.turns[-1].content == ""


async def test_a_model_without_vision_says_so_and_charges_nothing(
    start: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    async with start() as app:
        alice = await app.sign_up(6103, "Alice")
        chat_id = await open_ai_chat(alice)
        await set_chat_ai(alice, chat_id, model="blind")
        media_id = await _upload(alice, png_bytes())
        bot_id = await _bot_id(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "look", media_ids=[media_id])
            reply = await follow_reply(ws)
            answer = await _bot_message(ws, bot_id)
        assert reply.end["type"] == "ai_reply_done"
        text = answer["message"]["text"]
        assert isinstance(text, str)
        assert text.startswith("Blind Model can't see images. Models that can: ")
        seeing = text.split("Models that can: ", 1)[1].split(". Change", 1)[0].split(", ")
        assert {"Seeing", "Claude Seeing", "GPT-4o mini"} <= set(seeing)
        assert "Blind Model" not in seeing
        assert "/model" in text
        assert fake_llm.requests == []
        assert await _usage_charges(alice) == []
    row = await reply_row(billing_sessionmaker, reply.reply_id)
    assert (row.cost_micros, row.input_tokens, row.output_tokens) == (0, 0, 0)
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert (state.balance, state.reserved, state.holds) == (GRANT, 0, 0)


@pytest.mark.parametrize("model", [SEEING, CLAUDE], ids=["openai", "anthropic"])
async def test_a_tool_call_searches_the_chat_history_inside_the_streamed_answer(
    start: AppFactory, fake_llm: FakeLLM, model: ModelInfo
) -> None:
    fake_llm.script(
        FakeReply(
            text="Let me look.",
            tool_calls=[FakeToolCall("search_history", {"query": "flight"})],
            input_tokens=300,
            output_tokens=20,
        ),
        FakeReply(text="Bob said: 9:40 from gate 4.", input_tokens=400, output_tokens=10),
    )
    async with start() as app:
        alice = await app.sign_up(6104, "Alice")
        bob = await app.sign_up(6105, "Bob")
        carol = await app.sign_up(6106, "Carol")
        group_id = await group_with_ai(alice, bob)
        await set_chat_ai(alice, group_id, model=model.id)
        await bob.send(group_id, "The flight leaves at 9:40 from gate 4")
        elsewhere = await carol.create_group("Secrets", bob)  # Alice is not in it
        await carol.send(elsewhere["id"], "The secret flight is at noon")
        bot_id = await _bot_id(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(group_id, "@test_ai_bot what did Bob say about the flight?")
            frames = await _reply_frames(ws)
            answer = await _bot_message(ws, bot_id)
        kinds = [frame["type"] for frame in frames]
        tool_frames = [frame for frame in frames if frame["type"] == "ai_reply_tool"]
        deltas = [frame for frame in frames if frame["type"] == "ai_reply_delta"]
        first_tool = kinds.index("ai_reply_tool")
        assert (kinds[0], kinds[-1]) == ("ai_reply_started", "ai_reply_done")
        assert "ai_reply_delta" in kinds[:first_tool]  # "Let me look." before the search
        assert "ai_reply_delta" in kinds[first_tool:]  # the answer after it
        assert [(f["tool"], f["status"]) for f in tool_frames] == [
            ("search_history", "started"),
            ("search_history", "finished"),
        ]
        for frame in tool_frames:
            assert (frame["reply_id"], frame["chat_id"]) == (frames[0]["reply_id"], group_id)
            assert isinstance(frame["call_id"], str)
            assert frame["call_id"]
            assert frame["message_id"] is None
        text = "Let me look.\n\nBob said: 9:40 from gate 4."
        assert answer["message"]["text"] == text
        assert reassemble(deltas) == text
        first, second = fake_llm.requests
        assert [tool.name for tool in first.tools] == ["generate_image", "search_history"]
        said, results = second.turns[-2:]
        assert (said.role, said.content) == ("assistant", "Let me look.")
        assert [call.name for call in said.tool_calls] == ["search_history"]
        (result,) = results.tool_results
        assert result.call_id == said.tool_calls[0].id
        assert "Bob (" in result.content
        assert "9:40 from gate 4" in result.content
        assert "secret" not in result.content
        assert await _usage_charges(alice) == [-cost_micros(model, 700, 30)]


async def test_a_tool_call_with_bad_arguments_or_an_unknown_tool_gets_an_error_result(
    start: AppFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        FakeReply(
            text="",
            tool_calls=[
                FakeToolCall("search_history", {"query": 42}),
                FakeToolCall("launch_rockets", {}),
            ],
        ),
        FakeReply(text="I could not search."),
    )
    async with start() as app:
        alice = await app.sign_up(6107, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "search something")
            started = await ws.wait_for("ai_reply_started")
            statuses = [(await ws.wait_for("ai_reply_tool"))["status"] for _ in range(4)]
            reply = await follow_reply(ws, started=started)
    assert reply.end["type"] == "ai_reply_done"
    assert statuses == ["started", "failed", "started", "failed"]
    errors = fake_llm.requests[1].turns[-1].tool_results
    assert "non-empty string argument 'query'" in errors[0].content
    assert "no tool 'launch_rockets'" in errors[1].content


async def test_tool_steps_are_bounded(start: AppFactory, fake_llm: FakeLLM) -> None:
    looping = FakeReply(text="", tool_calls=[FakeToolCall("search_history", {"query": "x"})])
    fake_llm.script(*[looping] * (MAX_TOOL_STEPS + 1), FakeReply(text="never"))
    async with start() as app:
        alice = await app.sign_up(6108, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "loop")
            reply = await follow_reply(ws, timeout=15)
    assert reply.end["type"] == "ai_reply_failed"  # no text came: nothing to post
    assert len(fake_llm.requests) == MAX_TOOL_STEPS + 1
    last = fake_llm.requests[-1].turns[-1].tool_results[0]
    assert "No more tools" in last.content


async def test_the_model_draws_with_the_tool_and_the_ai_posts_the_image(
    start: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(
        FakeReply(
            text="",
            tool_calls=[FakeToolCall("generate_image", {"prompt": "a cat on a sofa"})],
            input_tokens=200,
            output_tokens=15,
        ),
        FakeReply(),  # the picture
        FakeReply(text="Here is your cat.", input_tokens=250, output_tokens=6),
    )
    async with start() as app:
        alice = await app.sign_up(6109, "Alice")
        chat_id = await open_ai_chat(alice)
        bot_id = await _bot_id(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "draw me a cat")
            frames = await _reply_frames(ws, messages=True)
            posted = [
                f
                for f in frames
                if f["type"] == "new_message" and f["message"]["sender_id"] == bot_id
            ]
            while len(posted) < 2:  # persisted events may follow the ephemeral ai_reply_done
                posted.append(await _bot_message(ws, bot_id))
        image_message, answer = posted
        tool_started, tool_finished = [f for f in frames if f["type"] == "ai_reply_tool"]
        assert (tool_started["tool"], tool_started["status"]) == ("generate_image", "started")
        assert tool_finished["status"] == "finished"
        assert tool_finished["message_id"] == image_message["message"]["id"]
        assert frames[-1]["type"] == "ai_reply_done"
        assert answer["message"]["text"] == "Here is your cat."
        await _assert_png_photo(alice, image_message["message"])
        (drawing,) = [r for r in fake_llm.requests if r.path.endswith("/images/generations")]
        assert drawing.json["prompt"] == "a cat on a sofa"
        assert drawing.json["model"] == IMAGE_MODEL.vendor_model
        cost = cost_micros(SEEING, 450, 21) + IMAGE_MODEL.image_price
        assert await _usage_charges(alice) == [-cost]
    row = await reply_row(billing_sessionmaker, frames[-1]["reply_id"])
    assert (row.images_generated, row.cost_micros) == (1, cost)


async def test_image_command_draws_a_picture_and_charges_it(
    start: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    async with start() as app:
        alice = await app.sign_up(6110, "Alice")
        chat_id = await open_ai_chat(alice)
        bot_id = await _bot_id(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "/image a red lighthouse at dusk")
            reply = await follow_reply(ws)
            posted = await _bot_message(ws, bot_id)
        assert reply.end["type"] == "ai_reply_done"
        assert reply.end["message_id"] == posted["message"]["id"]
        assert reply.deltas == []
        await _assert_png_photo(alice, posted["message"])
        (drawing,) = fake_llm.requests
        assert drawing.path.endswith("/images/generations")
        assert drawing.json["prompt"] == "a red lighthouse at dusk"
        assert await _usage_charges(alice) == [-IMAGE_MODEL.image_price]
    row = await reply_row(billing_sessionmaker, reply.reply_id)
    assert (row.kind, row.model, row.images_generated) == ("image", IMAGE_MODEL.id, 1)
    assert (row.input_tokens, row.output_tokens, row.cost_micros) == (0, 0, 42_000)


async def test_image_command_without_balance_is_refused_with_402(
    start: AppFactory, fake_llm: FakeLLM
) -> None:
    async with start(billing_starting_grant_micros=IMAGE_MODEL.image_price - 1) as app:
        alice = await app.sign_up(6111, "Alice")
        chat_id = await open_ai_chat(alice)
        refused = await alice.post(
            f"/api/v1/chats/{chat_id}/messages", json={"text": "/image a castle"}
        )
        assert refused.status_code == 402
        body = refused.json()
        assert body["code"] == "insufficient_balance"
        assert body["needed_micros"] == IMAGE_MODEL.image_price
        assert body["available_micros"] == IMAGE_MODEL.image_price - 1
        history = await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages")
        assert history["messages"] == []
    assert fake_llm.requests == []


async def test_image_command_without_a_prompt_is_a_clear_400(
    start: AppFactory, fake_llm: FakeLLM
) -> None:
    async with start() as app:
        alice = await app.sign_up(6112, "Alice")
        chat_id = await open_ai_chat(alice)
        refused = await alice.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "/image"})
        assert refused.status_code == 400
        assert refused.json()["code"] == "image_prompt_required"
    assert fake_llm.requests == []


async def _bot_id(user: ApiUser) -> int:
    chat: dict[str, Any] = await user.ok("POST", "/api/v1/chats/ai")
    return next(int(member["id"]) for member in chat["members"] if member["is_bot"])


async def _assert_png_photo(user: ApiUser, message: dict[str, Any]) -> None:
    assert message["message_type"] == "photo"
    assert message["media_type"] == "image/png"
    assert isinstance(message["media_url"], str)
    download = await user.get(message["media_url"])
    assert download.status_code == 200
    with Image.open(io.BytesIO(download.content)) as drawn:
        assert drawn.format == "PNG"


async def test_a_drawing_that_fails_is_an_error_result_and_costs_no_picture(
    start: AppFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        FakeReply(
            text="",
            tool_calls=[FakeToolCall("generate_image", {"prompt": "a storm"})],
            input_tokens=100,
            output_tokens=10,
        ),
        FakeReply(status=400, error_message="Your prompt was rejected."),  # the picture
        FakeReply(text="I could not draw that.", input_tokens=150, output_tokens=5),
    )
    async with start() as app:
        alice = await app.sign_up(6113, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "draw a storm")
            frames = await _reply_frames(ws)
        statuses = [f["status"] for f in frames if f["type"] == "ai_reply_tool"]
        assert statuses == ["started", "failed"]
        assert frames[-1]["type"] == "ai_reply_done"
        (result,) = fake_llm.requests[-1].turns[-1].tool_results
        assert "Your prompt was rejected." in result.content
        assert await _usage_charges(alice) == [-cost_micros(SEEING, 250, 15)]


async def test_a_reply_that_fails_after_drawing_pays_for_the_picture_only(
    start: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(
        FakeReply(text="", tool_calls=[FakeToolCall("generate_image", {"prompt": "a boat"})]),
        FakeReply(),  # the picture
        FakeReply(status=401),
    )
    async with start() as app:
        alice = await app.sign_up(6114, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "draw a boat")
            frames = await _reply_frames(ws)
        assert frames[-1]["type"] == "ai_reply_failed"
        history = await alice.ok("GET", f"/api/v1/chats/{chat_id}/messages")
        assert [m["message_type"] for m in history["messages"]] == ["text", "photo"]
        assert await _usage_charges(alice) == [-IMAGE_MODEL.image_price]
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert (state.balance, state.reserved, state.holds) == (GRANT - IMAGE_MODEL.image_price, 0, 0)


async def test_image_command_that_fails_costs_nothing(
    start: AppFactory, fake_llm: FakeLLM, billing_sessionmaker: Sessionmaker
) -> None:
    fake_llm.script(FakeReply(status=400, error_message="Your prompt was rejected."))
    async with start() as app:
        alice = await app.sign_up(6115, "Alice")
        chat_id = await open_ai_chat(alice)
        async with socket_of(app.server, alice) as ws:
            await alice.send(chat_id, "/image something rejected")
            frames = await _reply_frames(ws)
        failed = frames[-1]
        assert failed["type"] == "ai_reply_failed"
        assert failed["code"] == "bad_request"
        assert await _usage_charges(alice) == []
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert (state.balance, state.reserved, state.holds) == (GRANT, 0, 0)


async def test_the_newest_four_photos_of_the_history_are_seen_with_their_captions(
    start: AppFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(FakeReply(text="Nice colours."))
    async with start() as app:
        alice = await app.sign_up(6116, "Alice")
        bob = await app.sign_up(6117, "Bob")
        group_id = await group_with_ai(alice, bob)
        for shade in range(5):  # not addressed to the AI: history only
            media_id = await _upload(bob, png_bytes(color=(shade * 50, 0, 0)))
            await bob.send(group_id, f"photo {shade}", media_ids=[media_id])
        async with socket_of(app.server, alice) as ws:
            await alice.send(group_id, "@test_ai_bot which photo is the reddest?")
            reply = await follow_reply(ws)
        assert reply.end["type"] == "ai_reply_done"
    (request,) = fake_llm.requests
    with_images = [turn for turn in request.turns if turn.images]
    assert [turn.content for turn in with_images] == [f"Bob: photo {n}" for n in (1, 2, 3, 4)]
    assert "Bob: photo 0" in [turn.content for turn in request.turns]  # its caption stays
