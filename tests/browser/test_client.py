"""The Mini App client end to end: two people chatting live, the AI's streamed reply and its
Stop button, a photo, and a connection cut and restored. Each test saves screenshots of the
screens it passes through (see conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import DemoUser, OpenClient
from tests.media.samples import png_bytes
from tests.support.fake_llm import FakeLLM, FakeReply

API = "/api/v1"


async def online(user: DemoUser) -> None:
    await expect(user.page.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "online"
    )


async def private_chat(first: DemoUser, second: DemoUser) -> int:
    """The private chat of two users, made over the API (set-up, not under test)."""
    other = await second.call("GET", f"{API}/me")
    chat = await first.call(
        "POST", f"{API}/chats", json={"chat_type": "private", "member_ids": [other["id"]]}
    )
    return int(chat["id"])


async def open_chat(user: DemoUser, chat_id: int) -> None:
    await user.page.locator(f'[data-testid="chat-item"][data-chat-id="{chat_id}"]').click()
    await expect(user.page.get_by_test_id("composer-input")).to_be_visible()


async def both_in_a_chat(
    open_client: OpenClient, first: tuple[str, str], second: tuple[str, str]
) -> tuple[DemoUser, DemoUser, int]:
    """Two people (name, username), their private chat, both online with it open."""
    one = await open_client(first[0], username=first[1])
    two = await open_client(second[0], username=second[1])
    chat_id = await private_chat(one, two)
    for user in (one, two):
        await online(user)
        await open_chat(user, chat_id)
    return one, two, chat_id


async def send(page: Page, text: str) -> None:
    await page.get_by_test_id("composer-input").fill(text)
    await page.get_by_test_id("send-button").click()


def message(page: Page, text: str) -> Any:
    return page.locator('[data-testid="message"]', has_text=text)


async def test_two_people_chat_live_with_typing_and_read_ticks(open_client: OpenClient) -> None:
    bob = await open_client("Bob", username="bob_live")
    alice = await open_client("Alice", username="alice_live")
    await online(bob)
    await online(alice)
    await alice.screenshot("chat-empty-list")

    # Alice starts a private chat by username.
    await alice.page.get_by_test_id("new-chat-button").click()
    await alice.page.get_by_test_id("username-input").fill("@bob_live")
    await alice.screenshot("chat-new-private")
    await alice.page.get_by_test_id("create-private-button").click()
    await expect(alice.page.get_by_test_id("composer-input")).to_be_visible()

    await send(alice.page, "Hi Bob! <b>not markup</b>")
    mine = message(alice.page, "Hi Bob!")
    await expect(mine).not_to_have_attribute("data-pending", "true")
    await expect(mine.get_by_test_id("read-state")).to_have_attribute("data-state", "sent")
    # User text is text, never markup.
    await expect(mine.get_by_test_id("message-text")).to_have_text("Hi Bob! <b>not markup</b>")

    # Bob's list shows the new chat with an unread badge, live.
    item = bob.page.get_by_test_id("chat-item")
    await expect(item).to_have_count(1)
    await expect(item.get_by_test_id("unread-badge")).to_have_text("1")
    await bob.screenshot("chat-list-unread")
    await item.click()
    await expect(message(bob.page, "Hi Bob!")).to_be_visible()

    # Opening the chat reads it: Alice's tick turns to read without a reload.
    await expect(mine.get_by_test_id("read-state")).to_have_attribute("data-state", "read")

    # Bob types: Alice sees it.
    await bob.page.get_by_test_id("composer-input").press_sequentially("Hello Al", delay=40)
    await expect(alice.page.get_by_test_id("typing-indicator")).to_contain_text("Bob is typing")
    await alice.screenshot("chat-typing")
    await bob.page.get_by_test_id("composer-input").press_sequentially("ice", delay=40)
    await bob.page.get_by_test_id("send-button").click()

    reply = message(alice.page, "Hello Alice")
    await expect(reply).to_have_count(1)
    await expect(alice.page.get_by_test_id("typing-indicator")).to_have_text("")
    # Alice has the chat open: Bob's message is read at once.
    theirs = message(bob.page, "Hello Alice")
    await expect(theirs.get_by_test_id("read-state")).to_have_attribute("data-state", "read")
    await alice.screenshot("chat-conversation-alice")
    await bob.screenshot("chat-conversation-bob")

    # Each side shows each message once.
    for user in (alice, bob):
        await expect(user.page.get_by_test_id("message")).to_have_count(2)


async def test_ai_reply_streams_into_the_page_and_can_be_stopped(
    open_client: OpenClient, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        FakeReply(text="A short and complete answer.", chunk_size=4, delay=0.02),
        FakeReply(text="word " * 400, chunk_size=5, delay=0.05),
    )
    carol = await open_client("Carol", username="carol_ai")
    await online(carol)
    await carol.page.get_by_test_id("ai-chat-button").click()
    await expect(carol.page.get_by_test_id("composer-input")).to_be_visible()

    # A reply that runs to its end becomes an ordinary message.
    await send(carol.page, "Hello AI")
    answer = message(carol.page, "A short and complete answer.")
    await expect(answer).to_have_count(1)
    await expect(carol.page.get_by_test_id("ai-streaming")).to_have_count(0)

    # A long one streams in piece by piece; Stop keeps what was written.
    await send(carol.page, "Now write a lot")
    streaming = carol.page.get_by_test_id("ai-streaming")
    await expect(streaming).to_be_visible()
    text = streaming.get_by_test_id("ai-streaming-text")
    await expect(text).to_contain_text("word word")
    first = await text.inner_text()
    await streaming.evaluate("el => { el.keptNode = true; }")
    await expect(text).not_to_have_text(first)  # it grows while we watch
    # ... in the same bubble: the Stop button is not replaced under the finger at every piece.
    assert await streaming.evaluate("el => el.keptNode === true")
    await carol.screenshot("ai-streaming")
    await streaming.get_by_test_id("ai-stop").click()
    await expect(streaming).to_have_count(0)

    kept = carol.page.get_by_test_id("message").last
    await expect(kept).to_contain_text("stopped")
    kept_text = await kept.get_by_test_id("message-text").inner_text()
    assert kept_text.startswith("word word")
    assert len(kept_text) < len("word " * 400) - 10
    await carol.screenshot("ai-stopped")

    conversation = carol.page.get_by_test_id("conversation")
    chat_id = int(await conversation.get_attribute("data-chat-id") or 0)
    history = await carol.call("GET", f"{API}/chats/{chat_id}/messages")
    last = history["messages"][-1]
    assert last["ai"]["incomplete"] is True
    assert last["text"] == kept_text
    await expect(carol.page.get_by_test_id("message")).to_have_count(4)


async def test_photo_is_uploaded_and_shown_to_both(open_client: OpenClient, tmp_path: Path) -> None:
    dave, erin, _ = await both_in_a_chat(
        open_client, ("Dave", "dave_photo"), ("Erin", "erin_photo")
    )

    photo_file = tmp_path / "photo.png"
    photo_file.write_bytes(png_bytes(80, 60))
    await dave.page.get_by_test_id("attach-input").set_input_files(photo_file)
    sent = dave.page.locator('[data-testid="message"][data-message-id]').filter(
        has=dave.page.get_by_test_id("message-photo")
    )
    await expect(sent).to_have_count(1)
    received = erin.page.get_by_test_id("message-photo")
    await expect(received).to_have_count(1)
    for page in (dave.page, erin.page):
        photo = page.locator(
            '[data-testid="message"][data-message-id] [data-testid="message-photo"]'
        )
        await expect(photo).to_be_visible()
        await page.wait_for_function(
            """() => { const img = document.querySelector(
                 '[data-testid="message"][data-message-id] [data-testid="message-photo"]');
               return img && img.complete && img.naturalWidth === 80; }"""
        )
    await dave.screenshot("photo-sender")
    await erin.screenshot("photo-receiver")


async def test_connection_cut_and_restored_loses_and_repeats_nothing(
    open_client: OpenClient,
) -> None:
    frank, grace, chat_id = await both_in_a_chat(
        open_client, ("Frank", "frank_net"), ("Grace", "grace_net")
    )
    await send(frank.page, "before the cut")
    await expect(message(grace.page, "before the cut")).to_have_count(1)

    await grace.context.set_offline(True)
    await expect(grace.page.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "offline"
    )
    for n in range(3):
        await send(frank.page, f"while you were away {n}")
    await frank.call(
        "POST", f"{API}/chats/{chat_id}/messages", json={"text": "sent over REST meanwhile"}
    )
    # Grace writes while offline: it waits as pending and goes out once, when she is back.
    await send(grace.page, "written offline")
    pending = grace.page.locator('[data-testid="message"][data-pending="true"]')
    await expect(pending).to_have_count(1)
    await grace.screenshot("reconnect-offline")

    await grace.context.set_offline(False)
    await online(grace)
    for text in [f"while you were away {n}" for n in range(3)] + ["sent over REST meanwhile"]:
        await expect(message(grace.page, text)).to_have_count(1)
    await expect(pending).to_have_count(0)
    await expect(message(frank.page, "written offline")).to_have_count(1)
    await grace.screenshot("reconnect-restored")

    for user in (frank, grace):
        bubbles = user.page.locator('[data-testid="message"][data-message-id]')
        await expect(bubbles).to_have_count(6)
        ids = await bubbles.evaluate_all("els => els.map(e => e.dataset.messageId)")
        assert len(set(ids)) == len(ids) == 6, ids
    history = await frank.call("GET", f"{API}/chats/{chat_id}/messages")
    assert [m["text"] for m in history["messages"]].count("written offline") == 1
