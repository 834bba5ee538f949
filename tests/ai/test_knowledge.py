"""Assistants' knowledge end to end: documents uploaded through the routes, processed by the
knowledge worker (text extracted, chunked, embedded by the fake vendor's /v1/embeddings through
the real openai SDK), followed by knowledge_progress frames, retrieved for a question in a
chat with the assistant, cited in the reply, and paid for by the owner."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import docx
from fpdf import FPDF

from llm.catalogue import DEFAULT_MODELS, cost_micros
from services.knowledge.retrieval import SOURCES_MAX_TOKENS
from tests.ai.conftest import DEFAULT_MODEL, OwnAppFactory
from tests.ai.helpers import bot_message, follow_reply, socket_of
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import LiveServer
from tests.support.ws import Frame, WsClient

PDF_PASSAGE = "Refunds for the Zephyr plan are issued within seventeen days of purchase."
DOCX_PASSAGE = "Parcels to Iceland travel by sea freight and arrive within three weeks."
READY_TIMEOUT = 30.0
LARGE_MODEL = "text-embedding-3-large"


def make_pdf(*paragraphs: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 8, paragraph)
        pdf.ln(4)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Logistics", level=1)
    document.add_heading("Shipping", level=2)
    document.add_paragraph(DOCX_PASSAGE)
    document.add_heading("Returns", level=2)
    document.add_paragraph("Returned parcels are inspected in our warehouse before restocking.")
    data = io.BytesIO()
    document.save(data)
    return data.getvalue()


async def create_assistant(owner: ApiUser, visibility: str = "link") -> dict[str, Any]:
    assistant: dict[str, Any] = await owner.ok(
        "POST",
        "/api/v1/assistants",
        json={
            "name": "Zephyr support",
            "instructions": "You answer questions about Zephyr's plans and shipping.",
            "visibility": visibility,
        },
    )
    return assistant


async def upload(owner: ApiUser, assistant_id: int, name: str, data: bytes) -> dict[str, Any]:
    response = await owner.post(
        f"/api/v1/assistants/{assistant_id}/documents", files={"file": (name, data)}
    )
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


async def paste(owner: ApiUser, assistant_id: int, title: str, text: str) -> dict[str, Any]:
    response = await owner.post(
        f"/api/v1/assistants/{assistant_id}/documents", json={"title": title, "text": text}
    )
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


async def until_done(ws: WsClient, document_id: int) -> Frame:
    """The knowledge_progress frame that ends the document's processing."""
    return await ws.wait_for(
        "knowledge_progress",
        lambda f: f["document_id"] == document_id and f["status"] != "processing",
        timeout=READY_TIMEOUT,
    )


def assert_document_shape(document: dict[str, Any]) -> None:
    assert isinstance(document["id"], int)
    assert isinstance(document["title"], str)
    assert document["status"] in ("processing", "ready", "failed")
    assert isinstance(document["chunks"], int)
    assert isinstance(document["embedded_chunks"], int)
    assert document["error"] is None or isinstance(document["error"], str)
    assert isinstance(document["cost_micros"], int)
    assert isinstance(document["created_at"], str)


async def test_an_assistant_answers_from_its_documents_and_cites_them(
    server: LiveServer, alice: ApiUser, bob: ApiUser, fake_llm: FakeLLM
) -> None:
    assistant = await create_assistant(alice)
    async with socket_of(server, alice) as ws:
        pdf = await upload(
            alice,
            assistant["id"],
            "handbook.pdf",
            make_pdf("Zephyr plans and billing.", PDF_PASSAGE, "Support is open on weekdays."),
        )
        guide = await upload(alice, assistant["id"], "guide.docx", make_docx())
        assert_document_shape(pdf)
        assert pdf["status"] == "processing"
        assert pdf["source_format"] == "pdf"
        assert guide["source_format"] == "docx"
        progress = await until_done(ws, pdf["id"])
        assert progress["status"] == "ready", progress
        assert progress["assistant_id"] == assistant["id"]
        assert isinstance(progress["chunks"], int)
        assert progress["chunks"] >= 1
        assert progress["embedded_chunks"] == progress["chunks"]
        assert (await until_done(ws, guide["id"]))["status"] == "ready"

    listed = await alice.ok("GET", f"/api/v1/assistants/{assistant['id']}/documents")
    assert [d["id"] for d in listed] == [pdf["id"], guide["id"]]
    for document in listed:
        assert_document_shape(document)
        assert document["status"] == "ready"
        assert document["embedding_model"] == "text-embedding-3-small"
        assert document["cost_micros"] > 0

    chat = await bob.ok(
        "POST",
        f"/api/v1/assistants/{assistant['id']}/chat",
        json={"share_token": assistant["share_token"]},
    )
    fake_llm.script(FakeReply(text="Refunds take seventeen days [1]."))
    async with socket_of(server, bob) as ws:
        await bob.send(chat["id"], "How many days do refunds for the Zephyr plan take?")
        reply = await follow_reply(ws, timeout=20)
        assert reply.end["type"] == "ai_reply_done", reply.end
        message = await bot_message(ws)

    system = next(
        m["content"] for m in fake_llm.requests[-1].json["messages"] if m["role"] == "system"
    )
    assert PDF_PASSAGE in system
    assert "[1] handbook.pdf" in system
    assert message["text"].endswith("Sources:\n- [1] handbook.pdf")

    entries = (await alice.ok("GET", "/api/v1/billing/transactions"))["items"]
    embeddings = [e for e in entries if (e.get("reason") or "").startswith("embeddings:")]
    assert len(embeddings) == 2
    assert all(e["kind"] == "usage" and isinstance(e["amount"], int) for e in embeddings)


async def test_retrieval_preview_names_document_and_section(
    server: LiveServer, alice: ApiUser
) -> None:
    assistant = await create_assistant(alice, "private")
    async with socket_of(server, alice) as ws:
        guide = await upload(alice, assistant["id"], "guide.docx", make_docx())
        await paste(alice, assistant["id"], "Plans", "# Plans\n\nThe Zephyr plan costs ten euros.")
        assert (await until_done(ws, guide["id"]))["status"] == "ready"
    preview = await alice.ok(
        "POST",
        f"/api/v1/assistants/{assistant['id']}/retrieval-preview",
        json={"question": "How long do parcels to Iceland travel?"},
    )
    assert preview["question"] == "How long do parcels to Iceland travel?"
    assert isinstance(preview["took_ms"], float)
    best = preview["passages"][0]
    assert best["document_title"] == "guide.docx"
    assert best["section"] == "Logistics › Shipping"
    assert DOCX_PASSAGE in best["text"]
    assert isinstance(best["score"], float)
    assert isinstance(best["chunk_id"], int)


async def test_documents_are_the_owners_only(
    server: LiveServer, alice: ApiUser, bob: ApiUser
) -> None:
    assistant = await create_assistant(alice, "public")
    document = await paste(alice, assistant["id"], "Notes", "Zephyr notes.")
    base = f"/api/v1/assistants/{assistant['id']}"
    attempts = [
        await bob.get(f"{base}/documents"),
        await bob.get(f"{base}/documents/{document['id']}"),
        await bob.delete(f"{base}/documents/{document['id']}"),
        await bob.post(f"{base}/documents", json={"title": "Mine", "text": "Bob's text"}),
        await bob.post(f"{base}/documents", files={"file": ("b.txt", b"Bob's file")}),
        await bob.post(f"{base}/retrieval-preview", json={"question": "Zephyr?"}),
        await alice.get("/api/v1/assistants/999999/documents"),
    ]
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "assistant_not_found"
    assert len(await alice.ok("GET", f"{base}/documents")) == 1


async def test_bad_documents_are_refused_or_fail(server: LiveServer, alice: ApiUser) -> None:
    assistant = await create_assistant(alice, "private")
    base = f"/api/v1/assistants/{assistant['id']}/documents"
    refused = await alice.post(base, files={"file": ("tool.exe", b"MZ\x90\x00\x03binary")})
    assert refused.status_code == 415
    assert refused.json()["code"] == "unsupported_document"
    empty = await alice.post(base, json={"title": "Empty", "text": ""})
    assert empty.status_code == 422
    assert await alice.ok("GET", base) == []

    async with socket_of(server, alice) as ws:
        corrupt = await upload(alice, assistant["id"], "broken.pdf", b"%PDF-1.7\nnot a pdf at all")
        progress = await until_done(ws, corrupt["id"])
    assert progress["status"] == "failed"
    assert isinstance(progress["error"], str)
    assert "PDF" in progress["error"]
    failed = await alice.ok("GET", f"{base}/{corrupt['id']}")
    assert failed["status"] == "failed"
    assert failed["chunks"] == 0


async def test_a_deleted_document_is_no_longer_retrieved(
    server: LiveServer, alice: ApiUser
) -> None:
    assistant = await create_assistant(alice, "private")
    base = f"/api/v1/assistants/{assistant['id']}"
    async with socket_of(server, alice) as ws:
        note = await paste(alice, assistant["id"], "Zephyr FAQ", "# FAQ\n\n" + PDF_PASSAGE)
        assert (await until_done(ws, note["id"]))["status"] == "ready"
    question = {"question": "Zephyr refunds"}
    before = await alice.ok("POST", f"{base}/retrieval-preview", json=question)
    assert before["passages"][0]["section"] == "FAQ"
    deleted = await alice.delete(f"{base}/documents/{note['id']}")
    assert deleted.status_code == 204
    assert (await alice.get(f"{base}/documents/{note['id']}")).status_code == 404
    after = await alice.ok("POST", f"{base}/retrieval-preview", json=question)
    assert after["passages"] == []


async def test_no_balance_no_document(own_app: OwnAppFactory) -> None:
    async with own_app(billing_starting_grant_micros=0) as app:
        owner = await app.sign_up(301, "Olga")
        assistant = await create_assistant(owner, "private")
        base = f"/api/v1/assistants/{assistant['id']}/documents"
        for attempt in (
            await owner.post(base, json={"title": "T", "text": "Some knowledge."}),
            await owner.post(base, files={"file": ("a.txt", b"Some knowledge.")}),
        ):
            assert attempt.status_code == 402, attempt.text
            assert attempt.json()["code"] == "insufficient_balance"
        assert await owner.ok("GET", base) == []
        balance = await owner.ok("GET", "/api/v1/billing/balance")
        assert balance["reserved"] == 0


async def test_documents_are_embedded_again_when_the_model_changes(
    own_app: OwnAppFactory,
) -> None:
    async with own_app() as app:
        owner = await app.sign_up(302, "Petra")
        assistant = await create_assistant(owner, "private")
        async with socket_of(app.server, owner) as ws:
            note = await paste(owner, assistant["id"], "Plans", "The Zephyr plan is monthly.")
            assert (await until_done(ws, note["id"]))["status"] == "ready"
    async with own_app(embeddings_model=LARGE_MODEL) as app:
        owner = await app.sign_up(302, "Petra")
        path = f"/api/v1/assistants/{assistant['id']}/documents/{note['id']}"
        # The worker re-embeds at start, maybe before a socket could listen: the route is read.
        async with asyncio.timeout(READY_TIMEOUT):
            while (again := await owner.ok("GET", path))["embedding_model"] != LARGE_MODEL:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert again["status"] == "ready"
        assert again["embedded_chunks"] == again["chunks"] == 1
        assert again["cost_micros"] > note["cost_micros"]


async def test_a_reply_from_knowledge_holds_room_for_its_sources(
    server: LiveServer, alice: ApiUser, bob: ApiUser, fake_llm: FakeLLM
) -> None:
    """The hold covers the retrieved sources the prompt will carry, so what a reply costs
    never exceeds what was held for it."""
    question = "How many days do refunds for the Zephyr plan take?"
    learned = await create_assistant(alice)
    plain = await create_assistant(alice)
    async with socket_of(server, alice) as ws:
        pdf = await upload(alice, learned["id"], "handbook.pdf", make_pdf(PDF_PASSAGE))
        assert (await until_done(ws, pdf["id"]))["status"] == "ready"

    async def held_for(assistant: dict[str, Any]) -> int:
        chat = await bob.ok(
            "POST",
            f"/api/v1/assistants/{assistant['id']}/chat",
            json={"share_token": assistant["share_token"]},
        )
        gate = asyncio.Event()
        fake_llm.script(FakeReply(text="Seventeen days.", gate=gate))
        async with socket_of(server, bob) as ws:
            await bob.send(chat["id"], question)  # the reply and its hold are taken with it
            reserved = (await bob.ok("GET", "/api/v1/billing/balance"))["reserved"]
            gate.set()
            assert (await follow_reply(ws, timeout=20)).end["type"] == "ai_reply_done"
        assert isinstance(reserved, int)
        return int(reserved)

    model = next(m for m in DEFAULT_MODELS if m.id == DEFAULT_MODEL)
    sources_price = cost_micros(model, SOURCES_MAX_TOKENS, 0)
    assert await held_for(learned) - await held_for(plain) >= sources_price
