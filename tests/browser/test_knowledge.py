"""An assistant's documents in the Mini App editor: a text file uploaded from the documents
panel is processed, its progress followed by knowledge_progress frames until it is ready;
pasted text is added beside it and deleted."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.browser.conftest import OpenClient
from tests.browser.test_assistants import assistant
from tests.browser.test_client import online


async def test_an_uploaded_document_reaches_ready_in_the_editor(
    open_client: OpenClient, tmp_path: Path
) -> None:
    owner = await open_client("Kira", username="kira_knowledge")
    await assistant(owner, "Librarian", "private")
    await online(owner)
    page = owner.page
    await page.get_by_test_id("assistants-button").click()
    await page.get_by_test_id("assistants-tab-mine").click()
    await page.get_by_test_id("assistant-item").click()
    await page.get_by_test_id("edit-assistant").click()

    notes = tmp_path / "opening-hours.md"
    notes.write_text("# Opening hours\n\nThe library opens at nine on weekdays.\n")
    await page.get_by_test_id("document-file").set_input_files(str(notes))
    uploaded = page.get_by_test_id("document").filter(has_text="opening-hours.md")
    await expect(uploaded).to_have_attribute("data-status", "ready", timeout=20_000)
    await expect(uploaded.get_by_test_id("document-status")).to_contain_text("ready · 1 chunk")

    await page.get_by_test_id("paste-title").fill("Rules")
    await page.get_by_test_id("paste-text").fill("Quiet, please.")
    await page.get_by_test_id("paste-send").click()
    pasted = page.get_by_test_id("document").filter(has_text="Rules")
    await expect(pasted).to_have_attribute("data-status", "ready", timeout=20_000)
    await owner.screenshot("assistant-knowledge")
    await pasted.get_by_test_id("delete-document").click()
    await expect(page.get_by_test_id("document")).to_have_count(1)
    assert owner.page_errors == []
