"""A voice note's transcript in the Mini App: asked for with its "Transcribe" button, seen live
by both people under the voice note (from `message_transcribed`), and after a reload from the
message views. The screenshot is kept in docs/screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.browser.conftest import DemoUser, OpenClient
from tests.browser.test_client import API, both_in_a_chat
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.voices import transcriptions, voice_note

WORDS = "Meet me at the station at six"
SCREENSHOT = Path("docs/screenshots/transcribed-voice-note.png")


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
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await sam.page.screenshot(path=str(SCREENSHOT))
    await sam.screenshot("voice-transcribed")
    await sam.page.reload()
    reloaded = sam.page.locator(note).get_by_test_id("message-transcript")
    await expect(reloaded).to_have_text(WORDS)
    assert len(transcriptions(fake_llm)) == 1
