"""The AI's answers rendered from Markdown in the client: headings, lists, tables, code with a
copy button, while streaming and once stored; and hostile Markdown left inert (nothing runs, no
element or attribute that could run or load anything, no javascript: or data: link)."""

from __future__ import annotations

from playwright.async_api import Dialog, expect

from tests.browser.conftest import DemoUser, OpenClient
from tests.browser.test_client import message, online, send
from tests.support.fake_llm import FakeLLM, FakeReply

ANSWER = """## Sorting in Python

Use **`sorted()`** for a *new* list, or see [the docs](https://docs.python.org/3/howto/sorting.html).

1. Pick a key
2. Sort

| Method | Stable | Returns |
|:-------|:------:|--------:|
| `sorted()` | yes | a new list |
| `list.sort()` | yes | `None` |

```python
words = ["pear", "Apple", "fig"]
print(sorted(words, key=str.lower))
```

> Both are stable."""

CODE = 'words = ["pear", "Apple", "fig"]\nprint(sorted(words, key=str.lower))'

HOSTILE = """# Hostile

<script>window.__pwned = "script"</script>

<img src=x onerror="window.__pwned = 'img'">

[click me](javascript:window.__pwned='link') and [entity](&#106;avascript:alert(1))
and [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
and ![pic](javascript:alert(1)) and [ok](https://example.com/safe)

<iframe src="javascript:parent.__pwned='iframe'"></iframe>

<a href="https://example.com" onclick="window.__pwned='anchor'" onmouseover="alert(1)">hover</a>

<svg onload="window.__pwned='svg'"><script>window.__pwned='svg-script'</script></svg>

<details open ontoggle="window.__pwned='details'"><summary>x</summary></details>

<style>body { display: none }</style>

Inline `<img src=x onerror=alert(1)>` code and <b onmouseover=alert(1)>bold</b>.

```html
<script>window.__pwned = "code"</script>
```"""

FORBIDDEN = (
    "script, img, iframe, svg, object, embed, style, details, form, input:not([type=checkbox])"
)


async def ai_chat(user: DemoUser) -> None:
    await online(user)
    await user.page.get_by_test_id("ai-chat-button").click()
    await expect(user.page.get_by_test_id("composer-input")).to_be_visible()


async def test_an_answer_renders_markdown_and_copies_its_code(
    open_client: OpenClient, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        FakeReply(text="**Bold first**\n\n" + "- item\n" * 120, chunk_size=6, delay=0.03),
        FakeReply(text=ANSWER, chunk_size=40),
    )
    rita = await open_client("Rita", username="rita_md")
    await rita.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await ai_chat(rita)

    # While it streams, the reply is already rendered (and re-rendered as it grows).
    await send(rita.page, "A long list please")
    streaming = rita.page.get_by_test_id("ai-streaming-text")
    await expect(streaming.locator("strong")).to_have_text("Bold first")
    await expect(streaming.locator("ul > li").first).to_have_text("item")
    assert "**" not in await streaming.inner_text()
    await expect(rita.page.get_by_test_id("ai-streaming")).to_have_count(0)
    await expect(message(rita.page, "Bold first").locator("li")).to_have_count(120)

    await send(rita.page, "How do I sort?")
    answer = message(rita.page, "Sorting in Python").get_by_test_id("message-text")
    await expect(answer.locator("h2")).to_have_text("Sorting in Python")
    await expect(answer.locator("strong > code")).to_have_text("sorted()")
    await expect(answer.locator("em")).to_have_text("new")
    link = answer.get_by_role("link", name="the docs")
    await expect(link).to_have_attribute("href", "https://docs.python.org/3/howto/sorting.html")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(answer.locator("ol > li")).to_have_text(["Pick a key", "Sort"])
    table = answer.get_by_test_id("markdown-table")
    await expect(table.locator("th")).to_have_text(["Method", "Stable", "Returns"])
    await expect(table.locator("tbody tr")).to_have_count(2)
    await expect(table.locator("td code").first).to_have_text("sorted()")
    assert await table.locator("th").last.evaluate("el => el.style.textAlign") == "right"
    assert await table.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    await expect(answer.locator("blockquote")).to_have_text("Both are stable.")
    block = answer.get_by_test_id("code-block")
    await expect(block.locator("pre > code")).to_have_text(CODE)
    await expect(block.locator(".code-language")).to_have_text("python")
    assert "monospace" in await block.locator("pre").evaluate(
        "el => getComputedStyle(el).fontFamily"
    )

    await answer.scroll_into_view_if_needed()
    await rita.screenshot("rendered-answer")  # docs/screenshots/rendered-answer.png

    await block.get_by_test_id("copy-code").click()
    await expect(rita.page.locator("#toast")).to_have_text("Copied")
    assert await rita.page.evaluate("navigator.clipboard.readText()") == CODE
    # Copying the code is not a tap on the bubble: no action sheet opens.
    await expect(rita.page.get_by_role("dialog")).to_have_count(0)


async def test_hostile_markdown_is_inert(open_client: OpenClient, fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeReply(text=HOSTILE, chunk_size=25, delay=0.01))
    mallory = await open_client("Mallory", username="mallory_md")
    dialogs: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    mallory.page.on("dialog", dismiss)
    await ai_chat(mallory)
    await send(mallory.page, "Say something nasty")
    answer = message(mallory.page, "Hostile").get_by_test_id("message-text")
    await expect(answer.locator("h1")).to_have_text("Hostile")
    await expect(answer.locator("pre > code")).to_have_text(
        '<script>window.__pwned = "code"</script>'
    )

    # The markup is shown as the text it is; none of it became an element.
    await expect(answer).to_contain_text('<script>window.__pwned = "script"</script>')
    await expect(answer).to_contain_text("<img src=x onerror=")
    await expect(answer).to_contain_text("<b onmouseover=alert(1)>bold</b>")
    await expect(answer.locator(FORBIDDEN)).to_have_count(0)
    assert await mallory.page.get_by_test_id("message-list").locator(FORBIDDEN).count() == 0
    handlers = await answer.evaluate(
        """el => [el, ...el.querySelectorAll("*")].flatMap(
            (node) => [...node.attributes].map((a) => a.name)).filter((n) => n.startsWith("on"))"""
    )
    assert handlers == []

    # Only the safe link is a link; the others are their text.
    links = answer.get_by_role("link")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://example.com/safe")
    for text in ("click me", "entity", "data", "pic"):
        await expect(answer).to_contain_text(text)
    await answer.get_by_text("hover").hover()
    await answer.get_by_text("click me").click()

    # Nothing ran: no flag, no dialog, no error, and the page is still shown.
    assert await mallory.page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert mallory.page_errors == []
    await expect(mallory.page.get_by_test_id("composer-input")).to_be_visible()
