"""Assistants in the Mini App: the catalogue and its search, the editor (create, then find it
under "Mine" and start a chat with it), a deep link to a shared one, and rating a reply."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import DemoUser, OpenClient
from tests.browser.test_client import API, message, online, send
from tests.support.fake_llm import FakeLLM, FakeReply


async def assistant(owner: DemoUser, name: str, visibility: str, **extra: Any) -> dict[str, Any]:
    """One made over the API (set-up, not under test)."""
    body = {"name": name, "instructions": f"You are {name}.", "visibility": visibility, **extra}
    created: dict[str, Any] = await owner.call("POST", f"{API}/assistants", json=body)
    return created


async def test_the_catalogue_finds_a_public_assistant_and_not_a_private_one(
    open_client: OpenClient,
) -> None:
    owner = await open_client("Olga", username="olga_assist")
    await assistant(owner, "Chef Public", "public", description="Recipes for every day")
    await assistant(owner, "Chef Private", "private")
    visitor = await open_client("Victor", username="victor_assist")
    await online(visitor)
    await visitor.page.get_by_test_id("assistants-button").click()
    items = visitor.page.get_by_test_id("assistant-item")
    await expect(items).to_have_count(1)
    await visitor.page.get_by_test_id("assistant-search").fill("chef")
    await expect(items).to_have_count(1)
    await expect(items.first).to_contain_text("Chef Public")
    await expect(visitor.page.get_by_text("Chef Private")).to_have_count(0)
    await visitor.page.get_by_test_id("assistant-search").fill("nothing like this")
    await expect(visitor.page.get_by_test_id("assistants-empty")).to_be_visible()
    await visitor.screenshot("assistants-catalogue")
    assert visitor.page_errors == []


async def test_an_assistant_made_in_the_editor_is_mine_and_answers_in_its_chat(
    open_client: OpenClient, fake_llm: FakeLLM
) -> None:
    fake_llm.script(FakeReply(text="Arr, a fine question."))
    user = await open_client("Petra", username="petra_assist")
    await online(user)
    page = user.page
    await page.get_by_test_id("assistants-button").click()
    await page.get_by_test_id("new-assistant-button").click()
    await page.get_by_test_id("assistant-name-input").fill("Pirate")
    await page.get_by_test_id("assistant-instructions-input").fill("Talk like a pirate.")
    await page.get_by_test_id("assistant-greeting-input").fill("Ahoy!")
    await page.get_by_test_id("assistant-visibility-select").select_option("link")
    await user.screenshot("assistant-editor")
    await page.get_by_test_id("save-assistant").click()
    await expect(page.get_by_test_id("assistant-title")).to_have_text("Pirate")
    await expect(page.get_by_test_id("assistant-share-link")).to_contain_text("assistant_")

    await page.get_by_test_id("back-button").click()
    await page.get_by_test_id("assistants-tab-mine").click()
    await expect(page.get_by_test_id("assistant-item")).to_contain_text("Pirate")
    await page.get_by_test_id("assistant-item").click()
    await page.get_by_test_id("start-assistant-chat").click()
    await expect(message(page, "Ahoy!")).to_have_count(1)
    await send(page, "Where is the treasure?")
    await expect(message(page, "Arr, a fine question.")).to_have_count(1)
    assert "Talk like a pirate." in str(fake_llm.requests[-1].json["messages"][0])

    # A thumb down with a comment reaches the owner's usage.
    answer = message(page, "Arr, a fine question.")
    await answer.get_by_test_id("rate-down").click()
    await expect(answer.get_by_test_id("rate-down")).to_have_attribute("aria-pressed", "true")
    await page.get_by_test_id("rating-comment").fill("Too few details")
    await page.get_by_test_id("rating-comment-send").click()
    await expect(page.get_by_test_id("toast")).to_contain_text("Thanks")
    await user.screenshot("assistant-rated")
    mine = await user.call("GET", f"{API}/assistants", params={"owner": "me"})
    usage = await user.call("GET", f"{API}/assistants/{mine[0]['id']}/usage")
    assert usage["ratings"] == {"up": 0, "down": 1}
    assert usage["recent_comments"][0]["comment"] == "Too few details"
    assert user.page_errors == []


async def test_a_link_assistants_deep_link_opens_its_page(open_client: OpenClient) -> None:
    owner = await open_client("Lena", username="lena_assist")
    shared = await assistant(owner, "Linked Helper", "link")
    guest = await open_client("Gleb", username="gleb_assist", start_param=shared["start_param"])
    await expect(guest.page.get_by_test_id("assistant-title")).to_have_text("Linked Helper")
    await guest.page.get_by_test_id("start-assistant-chat").click()
    await expect(guest.page.get_by_test_id("composer-input")).to_be_visible()
    assert guest.page_errors == []


async def test_an_admin_adds_an_assistant_to_a_group_from_its_page(
    open_client: OpenClient,
) -> None:
    owner = await open_client("Otto", username="otto_assist")
    helper = await assistant(owner, "Group Helper", "public")
    admin = await open_client("Anna", username="anna_assist")
    await online(admin)
    group = await admin.call(
        "POST", f"{API}/chats", json={"chat_type": "group", "title": "Book club"}
    )
    chat_item = admin.page.locator(f'[data-testid="chat-item"][data-chat-id="{group["id"]}"]')
    await expect(chat_item).to_be_visible()
    await admin.page.get_by_test_id("assistants-button").click()
    await admin.page.get_by_test_id("assistant-item").click()
    await admin.page.get_by_test_id("add-assistant-to-group").click()
    await admin.page.locator(f'[data-testid="group-choice"][data-chat-id="{group["id"]}"]').click()
    await expect(admin.page.get_by_test_id("toast")).to_contain_text("Group Helper")
    chat = await admin.call("GET", f"{API}/chats/{group['id']}")
    assert chat["assistant_id"] == helper["id"]
    assert any(member["is_bot"] for member in chat["members"])
    assert admin.page_errors == []
