"""The AI's senses in the Mini App client: the composer's picture button asks the AI to draw,
and the picture it posts shows in the conversation. Screenshots are saved."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import OpenClient
from tests.support.fake_llm import FakeLLM


async def test_the_picture_button_asks_the_ai_to_draw(
    open_client: OpenClient, fake_llm: FakeLLM
) -> None:
    alice = await open_client("Alice", username="alice_draws")
    await alice.page.get_by_test_id("ai-chat-button").click()
    composer = alice.page.get_by_test_id("composer-input")
    await expect(composer).to_be_visible()
    await alice.page.get_by_test_id("image-button").click()
    await expect(composer).to_have_value("/image ")
    await expect(composer).to_be_focused()
    await composer.press_sequentially("a green square")
    await alice.page.get_by_test_id("send-button").click()
    await expect(alice.page.get_by_test_id("message-photo")).to_have_count(1)
    loaded = "(img) => img.complete && img.naturalWidth > 0"
    await alice.page.wait_for_function(
        f"() => ({loaded})(document.querySelector('[data-testid=message-photo]'))"
    )
    await alice.screenshot("ai-drew-a-picture")
    (drawing,) = fake_llm.requests
    assert drawing.path.endswith("/images/generations")
    assert drawing.json["prompt"] == "a green square"
