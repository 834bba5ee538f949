"""An assistant's documents: added (an upload or pasted text), listed, read, deleted. Only the
assistant's owner manages them; anyone else is told the assistant does not exist."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.envelope import encode_envelope, encode_frame
from core.errors import NotFound, Unprocessable
from core.outbox import stage
from models import Assistant, DocumentStatus, KnowledgeChunk, KnowledgeDocument, Media, User
from services.billing.config import BillingConfig
from services.knowledge import billing
from services.knowledge.extraction import MAX_CHARACTERS, SourceFormat
from services.knowledge.runtime import KnowledgeRuntime

KNOWLEDGE_SERVICE = "knowledge"
TITLE_MAX_CHARS = 255


def wake_envelope() -> bytes:
    """Tells every process's knowledge worker that a document waits."""
    return encode_envelope([], encode_frame({}), service=KNOWLEDGE_SERVICE)


async def owned_assistant(session: AsyncSession, user: User, assistant_id: int) -> Assistant:
    """The assistant, if `user` owns it (archived too); 404 for everyone else, as if it did not
    exist (the rule of services.ai.assistants.owned_assistant)."""
    assistant = await session.get(Assistant, assistant_id)
    if assistant is None or assistant.owner_id != user.id:
        raise NotFound("Assistant not found", code="assistant_not_found")
    return assistant


async def bump_version(session: AsyncSession, assistant_id: int) -> None:
    await session.execute(
        update(Assistant)
        .where(Assistant.id == assistant_id)
        .values(knowledge_version=Assistant.knowledge_version + 1)
    )


def _title(raw: str | None, fallback: str) -> str:
    title = " ".join((raw or "").split())[:TITLE_MAX_CHARS]
    return title or fallback


async def add_document(
    session: AsyncSession,
    knowledge: KnowledgeRuntime,
    billing_config: BillingConfig,
    assistant: Assistant,
    *,
    title: str | None,
    source_format: SourceFormat,
    media: Media | None = None,
    text: str | None = None,
) -> KnowledgeDocument:
    """A new document in `processing`, its embedding's worst case held from the owner (402 when
    not covered, nothing added); the knowledge worker takes it from there."""
    if media is None and not (text and text.strip()):
        raise Unprocessable("The text is empty", code="document_empty")
    if text is not None and len(text) > MAX_CHARACTERS:
        raise Unprocessable(
            f"A document holds at most {MAX_CHARACTERS} characters", code="document_too_long"
        )
    fallback = (media.original_filename or "Document") if media is not None else "Text"
    document = KnowledgeDocument(
        assistant_id=assistant.id,
        title=_title(title, fallback),
        media_id=media.id if media is not None else None,
        source_text=text,
        source_format=source_format.value,
        status=DocumentStatus.PROCESSING,
    )
    session.add(document)
    await session.flush()
    characters = len(text) if text is not None else media.size if media is not None else 0
    await billing.hold(
        session,
        billing_config,
        assistant.owner_id,
        document,
        billing.worst_case_micros(knowledge.embeddings.model, characters),
    )
    await session.flush()
    stage(session, wake_envelope())
    return document


async def list_documents(session: AsyncSession, assistant: Assistant) -> list[KnowledgeDocument]:
    return list(
        await session.scalars(
            select(KnowledgeDocument)
            .where(KnowledgeDocument.assistant_id == assistant.id)
            .order_by(KnowledgeDocument.id)
        )
    )


async def get_document(
    session: AsyncSession, assistant: Assistant, document_id: int
) -> KnowledgeDocument:
    document = await session.get(KnowledgeDocument, document_id)
    if document is None or document.assistant_id != assistant.id:
        raise NotFound("Document not found", code="document_not_found")
    return document


async def delete_document(
    session: AsyncSession,
    billing_config: BillingConfig,
    assistant: Assistant,
    document_id: int,
) -> None:
    """The document and its chunks go; a hold still on it is released, charging nothing more."""
    document = await get_document(session, assistant, document_id)
    await billing.release(session, billing_config, assistant.owner_id, document)
    await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document.id))
    await session.delete(document)
    await bump_version(session, assistant.id)
    await session.flush()
