"""The rest of the Mini App client end to end: the AI in a group, editing and deleting, replies
and reactions, deep links, voice notes, the dark theme, history scrolled back, profile and
balance with a Stars top-up. Each test saves screenshots of the screens it passes through."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import Locator, Page, expect

from tests.ai.conftest import BOT_USERNAME
from tests.browser.conftest import DemoUser, OpenClient
from tests.browser.test_client import (
    API,
    both_in_a_chat,
    message,
    online,
    open_chat,
    private_chat,
    send,
)
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.fake_telegram.fake import FakeTelegram

SAVED_BUBBLES = '[data-testid="message"][data-message-id]'


async def me(user: DemoUser) -> dict[str, Any]:
    result: dict[str, Any] = await user.call("GET", f"{API}/me")
    return result


async def group_chat(owner: DemoUser, *others: DemoUser, title: str) -> int:
    """A group made over the API (set-up, not under test)."""
    member_ids = [(await me(other))["id"] for other in others]
    chat = await owner.call(
        "POST",
        f"{API}/chats",
        json={"chat_type": "group", "title": title, "member_ids": member_ids},
    )
    return int(chat["id"])


def bubble(page: Page, text: str) -> Locator:
    """The message whose own text is exactly `text` (not one that quotes it)."""
    own_text = page.locator(
        '[data-testid="message-text"]', has_text=re.compile(f"^{re.escape(text)}$")
    )
    return page.get_by_test_id("message").filter(has=own_text)


async def open_actions(user: DemoUser, text: str) -> None:
    """The action sheet of the saved message with that text."""
    await bubble(user.page, text).get_by_test_id("message-text").click()
    await expect(user.page.get_by_role("dialog", name="Message")).to_be_visible()


async def test_ai_joins_a_group_made_in_the_ui_and_answers_a_mention_for_everyone(
    open_client: OpenClient, fake_llm: FakeLLM
) -> None:
    gate = asyncio.Event()
    answer = "Hello both of you, from the AI in your group."
    fake_llm.script(FakeReply(text=answer, chunk_size=4, delay=0.02, gate=gate))
    bob = await open_client("Bob", username="bob_group")
    alice = await open_client("Alice", username="alice_group")
    await online(bob)
    await online(alice)

    # Alice makes the group in the new-chat screen.
    await alice.page.get_by_test_id("new-chat-button").click()
    await alice.page.get_by_test_id("tab-group").click()
    await alice.page.get_by_test_id("group-title-input").fill("Weekend plans")
    await alice.page.get_by_test_id("group-members-input").fill("@bob_group")
    await alice.screenshot("group-new")
    await alice.page.get_by_test_id("create-group-button").click()
    conversation = alice.page.get_by_test_id("conversation")
    await expect(conversation).to_be_visible()
    chat_id = int(await conversation.get_attribute("data-chat-id") or 0)

    # Group info: the AI is not a member until an admin picks when it answers.
    await alice.page.get_by_test_id("chat-info-button").click()
    await expect(alice.page.get_by_test_id("ai-not-in-group")).to_be_visible()
    members = alice.page.get_by_test_id("member-item")
    await expect(members).to_have_count(2)
    await expect(alice.page.get_by_test_id("chat-info-subtitle")).to_have_text("2 members")
    await alice.screenshot("group-info-ai-off")
    await alice.page.get_by_test_id("ai-mode-select").select_option("mention")
    await alice.page.get_by_test_id("ai-settings-save").click()
    await expect(members).to_have_count(3)
    await expect(members.filter(has_text="AI assistant")).to_have_count(1)
    await expect(alice.page.get_by_test_id("ai-not-in-group")).to_have_count(0)
    await expect(alice.page.get_by_test_id("chat-info-subtitle")).to_have_text("3 members")
    await alice.screenshot("group-info-ai-mention")
    settings = await alice.call("GET", f"{API}/chats/{chat_id}/ai")
    assert settings["mode"] == "mention"

    await alice.page.get_by_test_id("back-button").click()
    await expect(alice.page.get_by_test_id("composer-input")).to_be_visible()
    await open_chat(bob, chat_id)

    # A mention: the reply streams to both, then lands as one message from the AI.
    await send(alice.page, f"@{BOT_USERNAME} hello")
    for user in (alice, bob):
        await expect(user.page.get_by_test_id("ai-streaming")).to_be_visible()
    gate.set()
    for user in (alice, bob):
        await expect(message(user.page, answer)).to_have_count(1)
        await expect(user.page.get_by_test_id("ai-streaming")).to_have_count(0)
        await expect(user.page.locator(SAVED_BUBBLES)).to_have_count(2)
    await alice.screenshot("group-ai-answer-alice")
    await bob.screenshot("group-ai-answer-bob")
    history = await bob.call("GET", f"{API}/chats/{chat_id}/messages")
    assert [m["text"] for m in history["messages"]] == [f"@{BOT_USERNAME} hello", answer]
    assert history["messages"][1]["sender"]["is_bot"] is True


async def test_edit_reply_reaction_and_delete_are_seen_live_by_the_other(
    open_client: OpenClient,
) -> None:
    henry, iris, chat_id = await both_in_a_chat(
        open_client, ("Henry", "henry_edit"), ("Iris", "iris_edit")
    )
    await send(henry.page, "See you at 5")
    await expect(message(iris.page, "See you at 5")).to_have_count(1)

    # Henry edits: Iris sees the new text, marked edited.
    await open_actions(henry, "See you at 5")
    await henry.screenshot("message-actions")
    await henry.page.get_by_test_id("action-edit").click()
    await expect(henry.page.get_by_test_id("edit-preview")).to_be_visible()
    await henry.page.get_by_test_id("composer-input").fill("See you at 6")
    await henry.page.get_by_test_id("send-button").click()
    edited = bubble(iris.page, "See you at 6")
    await expect(edited).to_have_count(1)
    await expect(edited).to_contain_text("edited")
    await expect(message(iris.page, "See you at 5")).to_have_count(0)

    # Iris replies to it: Henry sees the quote.
    await open_actions(iris, "See you at 6")
    await iris.page.get_by_test_id("action-reply").click()
    await expect(iris.page.get_by_test_id("reply-preview")).to_contain_text("See you at 6")
    await send(iris.page, "Works for me")
    reply = message(henry.page, "Works for me")
    await expect(reply.get_by_test_id("reply-quote")).to_contain_text("See you at 6")

    # Iris reacts: Henry sees the reaction.
    await open_actions(iris, "See you at 6")
    await iris.page.locator('[data-testid="react-option"][data-emoji="👍"]').click()
    reaction = bubble(henry.page, "See you at 6").get_by_test_id("reaction")
    await expect(reaction).to_have_text("👍 1")
    await expect(bubble(iris.page, "See you at 6").get_by_test_id("reaction")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(reaction).to_have_attribute("aria-pressed", "false")
    await henry.screenshot("message-edited-replied-reacted")
    # After a reload Iris's reaction is still hers: tapping it takes it back, for both.
    await iris.page.reload()
    await online(iris)
    mine = bubble(iris.page, "See you at 6").get_by_test_id("reaction")
    await expect(mine).to_have_attribute("aria-pressed", "true")
    await mine.click()
    await expect(reaction).to_have_count(0)
    await expect(mine).to_have_count(0)
    await open_actions(iris, "See you at 6")
    await iris.page.locator('[data-testid="react-option"][data-emoji="👍"]').click()
    await expect(reaction).to_have_text("👍 1")

    # Henry deletes it: gone for Iris, and her quote says so.
    message_id = await bubble(henry.page, "See you at 6").get_attribute("data-message-id")
    await open_actions(henry, "See you at 6")
    await henry.page.get_by_test_id("action-delete").click()
    await henry.page.get_by_test_id("confirm-delete").click()
    for user in (henry, iris):
        await expect(bubble(user.page, "See you at 6")).to_have_count(0)
        deleted = user.page.locator(f'[data-testid="message"][data-message-id="{message_id}"]')
        await expect(deleted).to_have_text(re.compile("^Message deleted"))
        await expect(deleted.get_by_test_id("reaction")).to_have_count(0)
        quote = message(user.page, "Works for me").get_by_test_id("reply-quote")
        await expect(quote).to_contain_text("Message deleted")
    await iris.screenshot("message-deleted")
    history = await iris.call("GET", f"{API}/chats/{chat_id}/messages")
    first = history["messages"][0]
    assert first["is_deleted"] is True
    assert not first["reactions"]


async def test_invite_link_made_in_group_info_lets_a_new_person_join(
    open_client: OpenClient,
) -> None:
    jack = await open_client("Jack", username="jack_invite")
    chat_id = await group_chat(jack, title="Book club")
    await online(jack)
    await open_chat(jack, chat_id)
    await jack.page.get_by_test_id("chat-info-button").click()
    await jack.page.get_by_test_id("invite-link-create").click()
    link = jack.page.get_by_test_id("invite-link")
    token = await link.get_attribute("data-token")
    assert token
    # No WEBAPP_URL here: the link is the start parameter to open the Mini App with.
    await expect(link).to_have_text(f"join_{token}")
    await jack.screenshot("group-invite-link")

    kate = await open_client("Kate", username="kate_invite", start_param=f"join_{token}")
    conversation = kate.page.get_by_test_id("conversation")
    await expect(conversation).to_have_attribute("data-chat-id", str(chat_id))
    await expect(kate.page.locator("#title")).to_have_text("Book club")
    await expect(kate.page.get_by_test_id("composer-input")).to_be_visible()
    await kate.screenshot("deep-link-joined")
    # Jack's open group info lists her, live.
    await expect(jack.page.get_by_test_id("member-item").filter(has_text="Kate")).to_have_count(1)
    await expect(jack.page.get_by_test_id("chat-info-subtitle")).to_have_text("2 members")


async def test_chat_deep_link_opens_that_chat(open_client: OpenClient) -> None:
    leo = await open_client("Leo", username="leo_link")
    mia = await open_client("Mia", username="mia_link")
    chat_id = await private_chat(leo, mia)
    await leo.call("POST", f"{API}/chats/{chat_id}/messages", json={"text": "Open me directly"})
    # Another chat, newer, so the linked one is not simply the first in the list.
    await group_chat(mia, leo, title="Newer group")

    mia_id = (await me(mia))["id"]
    again = await open_client("Mia", user_id=str(mia_id), start_param=f"chat_{chat_id}")
    await expect(again.page.get_by_test_id("conversation")).to_have_attribute(
        "data-chat-id", str(chat_id)
    )
    await expect(message(again.page, "Open me directly")).to_have_count(1)
    await expect(again.page.locator("#title")).to_have_text("Leo")
    await again.screenshot("deep-link-chat")


async def test_voice_note_is_recorded_sent_and_played_on_both_sides(
    open_client: OpenClient,
) -> None:
    nina = await open_client("Nina", username="nina_voice")
    omar = await open_client("Omar", username="omar_voice")
    chat_id = await private_chat(nina, omar)
    await nina.context.grant_permissions(["microphone"])
    await online(nina)
    await online(omar)
    await open_chat(nina, chat_id)

    voice_button = nina.page.get_by_test_id("voice-button")
    await voice_button.click()
    recording = nina.page.get_by_test_id("voice-recording")
    await expect(voice_button).to_have_attribute("data-state", "recording")
    await expect(recording).to_contain_text("0:01")  # a second of the fake microphone
    await nina.screenshot("voice-recording")
    await voice_button.click()
    await expect(voice_button).to_have_attribute("data-state", "idle")

    voice = f'{SAVED_BUBBLES} [data-testid="message-voice"]'
    length = f'{SAVED_BUBBLES} [data-testid="audio-duration"]'
    # It decodes: the player learns its length (about the second recorded), with no error.
    decoded = """(selector) => { const audio = document.querySelector(selector);
        return audio && !audio.error && audio.duration > 0.9 && audio.duration < 5; }"""
    await nina.page.wait_for_function(decoded, arg=voice)
    await expect(nina.page.locator(length)).to_have_text(re.compile(r"^0:0[1-4]$"))
    await expect(nina.page.locator('[data-testid="message"][data-pending="true"]')).to_have_count(0)
    await nina.page.locator(voice).evaluate("audio => { audio.keptNode = true; }")

    await open_chat(omar, chat_id)
    await omar.page.wait_for_function(decoded, arg=voice)
    await expect(omar.page.locator(length)).to_have_text(re.compile(r"^0:0[1-4]$"))
    for user in (nina, omar):
        src = await user.page.locator(voice).get_attribute("src")
        assert src
        response = await user.context.request.get(src)
        assert response.status == 200, (response.status, await response.text())
        assert response.headers["content-type"].startswith("audio/"), response.headers
    # Omar's reading turns Nina's tick, and her player stays the same element (playback goes on).
    sent = nina.page.locator(SAVED_BUBBLES)
    await expect(sent.get_by_test_id("read-state")).to_have_attribute("data-state", "read")
    assert await nina.page.locator(voice).evaluate("audio => audio.keptNode === true")
    await nina.screenshot("voice-sender")
    await omar.screenshot("voice-receiver")
    history = await omar.call("GET", f"{API}/chats/{chat_id}/messages")
    [saved] = history["messages"]
    assert saved["media"][0]["kind"] == "voice"


async def test_dark_theme_follows_telegram_colours(open_client: OpenClient) -> None:
    paula = await open_client("Paula", username="paula_dark", theme="dark")
    victor = await open_client("Victor", username="victor_dark")
    chat_id = await private_chat(victor, paula)
    await victor.call("POST", f"{API}/chats/{chat_id}/messages", json={"text": "Dark enough?"})
    await online(paula)
    page = paula.page
    # Telegram's dark theme: bg_color #212121, text_color #ffffff, secondary_bg_color #181818.
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await expect(page.locator("body")).to_have_css("background-color", "rgb(33, 33, 33)")
    await expect(page.locator("body")).to_have_css("color", "rgb(255, 255, 255)")
    await expect(page.get_by_test_id("chat-item")).to_have_count(1)
    await paula.screenshot("dark-chat-list")

    await open_chat(paula, chat_id)
    await expect(page.get_by_test_id("conversation")).to_have_css(
        "background-color", "rgb(24, 24, 24)"
    )
    await expect(bubble(page, "Dark enough?")).to_have_css("background-color", "rgb(33, 33, 33)")
    await paula.screenshot("dark-conversation")


async def test_history_loads_older_pages_when_scrolled_to_the_top(
    open_client: OpenClient,
) -> None:
    total = 95
    quinn = await open_client("Quinn", username="quinn_scroll")
    rosa = await open_client("Rosa", username="rosa_scroll")
    chat_id = await private_chat(quinn, rosa)
    for n in range(total):
        author = quinn if n % 3 else rosa
        await author.call(
            "POST", f"{API}/chats/{chat_id}/messages", json={"text": f"history {n:03}"}
        )
    await online(quinn)
    await open_chat(quinn, chat_id)
    bubbles = quinn.page.locator(SAVED_BUBBLES)
    await expect(message(quinn.page, f"history {total - 1:03}")).to_be_visible()
    first_page = await bubbles.count()
    assert first_page < total
    await quinn.screenshot("history-latest")

    listing = quinn.page.get_by_test_id("message-list")
    seen = first_page
    while seen < total:
        await listing.evaluate("el => { el.scrollTop = 0; }")
        await expect(bubbles).not_to_have_count(seen)
        seen = await bubbles.count()
    await expect(message(quinn.page, "history 000")).to_have_count(1)
    await expect(bubbles).to_have_count(total)
    texts = await bubbles.evaluate_all(
        "els => els.map(e => e.querySelector('[data-testid=\"message-text\"]').textContent)"
    )
    assert texts == [f"history {n:03}" for n in range(total)]
    ids = await bubbles.evaluate_all("els => els.map(e => Number(e.dataset.messageId))")
    assert ids == sorted(set(ids))
    await message(quinn.page, "history 000").scroll_into_view_if_needed()
    await quinn.screenshot("history-oldest")


async def test_profile_and_balance_screens_render(open_client: OpenClient) -> None:
    sam = await open_client("Sam", username="sam_profile")
    await online(sam)
    await sam.page.get_by_test_id("profile-button").click()
    profile = sam.page.get_by_test_id("profile-form")
    await expect(profile).to_contain_text("Sam")
    await expect(profile).to_contain_text("@sam_profile")
    await expect(sam.page.get_by_test_id("profile-bio")).to_be_editable()
    await sam.screenshot("profile")

    await sam.page.get_by_test_id("profile-balance-link").click()
    balance = (await sam.call("GET", f"{API}/billing/balance"))["available"]
    value = sam.page.get_by_test_id("balance-value")
    await expect(value).to_have_attribute("data-micros", str(balance))
    amount = balance / 1_000_000
    await expect(value).to_have_text(f"{amount:g} credit{'' if balance == 1_000_000 else 's'}")
    await expect(sam.page.get_by_test_id("topup-button").first).to_be_visible()
    await expect(sam.page.get_by_test_id("transaction-item").first).to_be_visible()
    await sam.screenshot("balance")


async def test_topup_outside_telegram_shows_the_invoice_link(
    open_client: OpenClient, fake_telegram: FakeTelegram
) -> None:
    tina = await open_client("Tina", username="tina_topup")
    await online(tina)
    await tina.page.get_by_test_id("balance-button").click()
    await tina.page.get_by_test_id("topup-button").first.click()
    link = tina.page.get_by_test_id("invoice-link")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    assert href in fake_telegram.invoice_links
    await expect(link).to_have_text(href)
    await tina.screenshot("balance-invoice-link")


async def test_topup_that_telegram_refuses_shows_a_clear_message(
    open_client: OpenClient, fake_telegram: FakeTelegram
) -> None:
    uma = await open_client("Uma", username="uma_topup")
    await online(uma)
    fake_telegram.fail_next("createInvoiceLink", error_code=400, description="Bad Request: nope")
    await uma.page.get_by_test_id("balance-button").click()
    button = uma.page.get_by_test_id("topup-button").first
    await button.click()
    error = uma.page.get_by_test_id("invoice-error")
    await expect(error).to_contain_text("Telegram could not create the invoice")
    await expect(uma.page.get_by_test_id("invoice-link")).to_have_count(0)
    await uma.screenshot("balance-invoice-error")
    # The screen still works: the next try (Telegram answering again) shows the link.
    await button.click()
    await expect(uma.page.get_by_test_id("invoice-link")).to_be_visible()
    await expect(error).to_have_count(0)
