"""A voice note's transcript in the Mini App: asked for with its "Transcribe" button, seen live
by both people under the voice note (from `message_transcribed`), and after a reload from the
message views. Its screenshot is docs/screenshots/transcribed-voice-note.png."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.browser.conftest import DemoUser, OpenClient
from tests.browser.test_client import API, both_in_a_chat, online, open_chat, send
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.voices import transcriptions, voice_note

WORDS = "Meet me at the station at six"


async def send_voice_note(user: DemoUser, chat_id: int, audio: bytes) -> int:
    media = await user.call(
        "POST",
        f"{API}/media",
        files={"file": ("voice.ogg", audio, "audio/ogg")},
        data={"kind": "voice"},
    )
    sent = await user.call(
        "POST", f"{API}/chats/{chat_id}/messages", json={"media_ids": [media["id"]]}
    )
    return int(sent["id"])


async def test_a_voice_note_is_transcribed_on_request_and_shown_to_both(
    open_client: OpenClient, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.script(FakeReply(text=WORDS))
    rita, sam, chat_id = await both_in_a_chat(open_client, ("Rita", "rita_vn"), ("Sam", "sam_vn"))
    note_id = await send_voice_note(rita, chat_id, voice_note(WORDS, tmp_path))
    note = f'[data-testid="message"][data-message-id="{note_id}"]'
    for user in (rita, sam):
        await expect(user.page.locator(note).get_by_test_id("message-voice")).to_have_count(1)
    button = sam.page.locator(note).get_by_test_id("transcribe-button")
    await expect(button).to_have_text("Transcribe")
    await button.click()
    for user in (sam, rita):
        shown = user.page.locator(note).get_by_test_id("message-transcript")
        await expect(shown).to_have_text(WORDS)
        await expect(user.page.locator(note).get_by_test_id("transcribe-button")).to_have_count(0)
    await sam.screenshot("transcribed-voice-note")  # docs/screenshots/transcribed-voice-note.png
    await sam.page.reload()
    reloaded = sam.page.locator(note).get_by_test_id("message-transcript")
    await expect(reloaded).to_have_text(WORDS)
    assert len(transcriptions(fake_llm)) == 1


async def test_voice_replies_turned_on_in_chat_info_bring_a_voice_note_from_the_ai(
    open_client: OpenClient, fake_llm: FakeLLM
) -> None:
    answer = "Pack **light** for Lisbon."
    fake_llm.script(FakeReply(text=answer))
    tess = await open_client("Tess", username="tess_vr")
    ai_chat = await tess.call("POST", f"{API}/chats/ai")
    await tess.page.reload()
    await online(tess)
    await open_chat(tess, ai_chat["id"])
    await tess.page.get_by_test_id("chat-info-button").click()
    voice_replies = tess.page.get_by_test_id("ai-voice-replies")
    await expect(voice_replies).not_to_be_checked()
    await voice_replies.check()
    await tess.page.get_by_test_id("ai-settings-save").click()
    await expect(tess.page.get_by_text("AI settings saved")).to_be_visible()
    settings = await tess.call("GET", f"{API}/chats/{ai_chat['id']}/ai")
    assert settings["voice_replies"] is True
    await tess.page.get_by_test_id("back-button").click()
    await send(tess.page, "What should I pack?")
    spoken = tess.page.locator('[data-testid="message"][data-message-id]').filter(
        has=tess.page.get_by_test_id("message-voice")
    )
    await expect(spoken).to_have_count(1)
    await expect(spoken.get_by_test_id("message-transcript")).to_have_text("Pack light for Lisbon.")
    await expect(spoken.get_by_test_id("transcribe-button")).to_have_count(0)
    await tess.screenshot("ai-voice-reply")
