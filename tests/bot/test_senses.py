"""Photos to the bot and pictures from it: the photo fetched from the fake Bot API (getFile and
the file's download), stored as our media and shown to a vision model, or refused by one
without vision; /image answered with sendPhoto; a tool step shown as a chat action."""

from __future__ import annotations

import asyncio
import io
import json

from PIL import Image
from sqlalchemy import select

from models import AiReply, AiReplyStatus, Media, Message, MessageMedia
from tests.bot.conftest import BotApp, BotAppFactory
from tests.media.samples import png_bytes
from tests.support.fake_llm import FakeLLMServer, FakeReply, FakeToolCall
from tests.support.fake_telegram.fake import RecordedCall
from tests.support.fake_telegram.updates import (
    bot_added_to_group,
    group_text,
    private_document,
    private_photo,
    private_text,
    tg_group,
    tg_user,
)

ALICE = tg_user(7301, "Alice", "alice")


def _to_alice(call: RecordedCall) -> bool:
    return call.params.get("chat_id") == ALICE.id


async def _photo_update(bot_app: BotApp, data: bytes, caption: str | None) -> None:
    file = bot_app.telegram.add_file(data, "photos", "png")
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    bot_app.telegram.push_update(
        private_photo(ALICE, file, width=width, height=height, caption=caption)
    )


async def test_a_photo_to_the_bot_is_stored_and_seen_by_the_model(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="A red rectangle."))
    data = png_bytes(2400, 1600, (200, 30, 30))
    await _photo_update(bot_app, data, "what is this?")
    final = await bot_app.telegram.wait_for_call("sendMessage", _to_alice)
    assert final.params["text"] == "A red rectangle."
    (request,) = bot_app.llm.requests
    assert request.turns[-1].content == "what is this?"
    (image,) = request.images
    with Image.open(io.BytesIO(image.data)) as seen:
        assert max(seen.size) <= 1568
    async with bot_app.sessionmaker() as session:
        message = await session.scalar(select(Message).where(Message.text == "what is this?"))
        assert message is not None
        assert message.telegram_message_id is not None
        media = await session.scalar(
            select(Media)
            .join(MessageMedia, MessageMedia.media_id == Media.id)
            .where(MessageMedia.message_id == message.id)
        )
    assert media is not None
    assert (media.kind, media.mime_type, media.size) == ("photo", "image/png", len(data))
    assert (media.width, media.height) == (2400, 1600)


async def test_an_image_sent_as_a_file_is_seen_too(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="A document photo."))
    file = bot_app.telegram.add_file(png_bytes(), "documents", "png")
    bot_app.telegram.push_update(
        private_document(ALICE, file, file_name="scan.png", mime_type="image/png")
    )
    final = await bot_app.telegram.wait_for_call("sendMessage", _to_alice)
    assert final.params["text"] == "A document photo."
    (request,) = bot_app.llm.requests
    assert len(request.images) == 1


async def test_a_model_without_vision_refuses_a_photo_clearly(
    start_bot_app: BotAppFactory, fake_llm_server: FakeLLMServer
) -> None:
    blind = {
        "id": "blind",
        "provider": "openai_compatible",
        "vendor_model": "blind-1",
        "display_name": "Blind Model",
        "context_window": 10_000,
        "max_output_tokens": 100,
        "input_price": 0,
        "output_price": 0,
        "base_url": fake_llm_server.base_url + "/v1",
    }
    async with start_bot_app(llm_default_model="blind", llm_models=json.dumps([blind])) as app:
        await _photo_update(app, png_bytes(), None)
        final = await app.telegram.wait_for_call("sendMessage", _to_alice)
        assert final.params["text"].startswith("Blind Model can't see images. Models that can: ")
        assert "GPT-4o mini" in final.params["text"]
        assert app.llm.requests == []


async def test_image_command_in_private_is_answered_with_a_photo(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/image a lighthouse"))
    action = await bot_app.telegram.wait_for_call("sendChatAction", _to_alice)
    assert action.params["action"] == "upload_photo"
    sent = await bot_app.telegram.wait_for_call("sendPhoto", _to_alice)
    attached = sent.params[sent.params["photo"].removeprefix("attach://")]  # multipart
    with Image.open(io.BytesIO(attached)) as drawn:
        assert drawn.format == "PNG"
    (drawing,) = bot_app.llm.requests
    assert drawing.json["prompt"] == "a lighthouse"
    async with bot_app.sessionmaker() as session:
        reply = await session.scalar(select(AiReply))
        assert reply is not None
        assert (reply.kind, reply.status, reply.images_generated) == ("image", "done", 1)
        assert reply.status == AiReplyStatus.DONE

    async with asyncio.timeout(5):
        while True:
            async with bot_app.sessionmaker() as session:
                shown = await session.scalar(
                    select(Message.telegram_message_id).where(Message.id == reply.reply_message_id)
                )
            if shown is not None:
                break
            await asyncio.sleep(0.02)
    assert (ALICE.id, shown) in bot_app.telegram.messages


async def test_the_image_tool_shows_as_a_chat_action_and_sends_the_photo(
    bot_app: BotApp,
) -> None:
    bot_app.llm.script(
        FakeReply(text="", tool_calls=[FakeToolCall("generate_image", {"prompt": "a fox"})]),
        FakeReply(),  # the picture
        FakeReply(text="Here is a fox."),
    )
    bot_app.telegram.push_update(private_text(ALICE, "draw a fox"))
    photo = await bot_app.telegram.wait_for_call("sendPhoto", _to_alice)
    final = await bot_app.telegram.wait_for_call("sendMessage", _to_alice)
    assert final.params["text"] == "Here is a fox."
    actions = [call.params["action"] for call in bot_app.telegram.calls_to("sendChatAction")]
    assert "upload_photo" in actions
    upload = next(
        call
        for call in bot_app.telegram.calls_to("sendChatAction")
        if call.params["action"] == "upload_photo"
    )
    assert upload.at < photo.at < final.at


async def test_image_command_in_a_group_is_answered_with_a_photo(bot_app: BotApp) -> None:
    group = tg_group(-100778, "Painters")
    anna = tg_user(7302, "Anna", "anna")
    bot_app.telegram.push_update(bot_added_to_group(group, anna, bot_app.telegram.bot_user))
    command = "/image@test_ai_bot a tree"
    bot_app.telegram.push_update(group_text(group, anna, command))  # a bot_command entity
    sent = await bot_app.telegram.wait_for_call(
        "sendPhoto", lambda call: call.params.get("chat_id") == group.id
    )
    assert sent.params["reply_parameters"]["message_id"] > 0
    (drawing,) = bot_app.llm.requests
    assert drawing.json["prompt"] == "a tree"
