"""Assistants' knowledge: their owners add documents (an upload, or pasted text), follow their
processing, delete them, and preview what retrieval finds for a question. Everyone else is told
the assistant does not exist (404).

Adding a document authenticates in a unit of work of its own, not the request's `Session`: no
database transaction stays open while a file streams (see routes.media).
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, ValidationError

from core.bounds import Id, Input
from core.db import read_session, unit_of_work
from core.errors import AppError, PayloadTooLarge, ServiceUnavailable, Unprocessable
from llm.base import LLMError
from models import KnowledgeDocument, MediaKind, User
from services.knowledge import billing, documents, retrieval
from services.knowledge.extraction import MAX_CHARACTERS, SourceFormat, detect_format
from services.knowledge.runtime import KnowledgeRuntime
from services.media import policy, storage
from services.views.knowledge import DocumentView, RetrievalPreviewView
from webapp_api.context import AppContext
from webapp_api.deps import Caller, Context, ReadSession, Session
from webapp_api.schemas.errors import errors
from webapp_api.uploads import MultipartUpload

router = APIRouter(prefix="/api/v1/assistants", tags=["knowledge"], responses=errors(401, 404, 422))

QUESTION_MAX_LENGTH = 2000
TEXT_BODY_MAX_BYTES = MAX_CHARACTERS * 4 + 64 * 1024


class DocumentText(Input):
    title: str = Field(min_length=1, max_length=documents.TITLE_MAX_CHARS)
    text: str = Field(min_length=1, max_length=MAX_CHARACTERS)


class RetrievalQuestion(Input):
    question: str = Field(min_length=1, max_length=QUESTION_MAX_LENGTH)


ADD_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PDF, DOCX, HTML, Markdown or plain text",
                        },
                        "title": {"type": "string", "maxLength": documents.TITLE_MAX_CHARS},
                    },
                }
            },
            "application/json": {"schema": DocumentText.model_json_schema()},
        },
    }
}


def _knowledge(context: AppContext) -> KnowledgeRuntime:
    if context.knowledge is None:
        raise ServiceUnavailable(
            "Knowledge is not configured (no embeddings endpoint)", code="knowledge_not_configured"
        )
    return context.knowledge


async def _document_from_text(
    request: Request, user: User, context: AppContext, assistant_id: int
) -> KnowledgeDocument:
    knowledge = _knowledge(context)
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > TEXT_BODY_MAX_BYTES:
        raise PayloadTooLarge("The text is too long", code="document_too_long")
    try:
        body = DocumentText.model_validate_json(await request.body())
    except ValidationError as exc:
        problem = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise Unprocessable(f"{where}: {problem['msg']}", code="validation_error") from None
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        assistant = await documents.owned_assistant(session, user, assistant_id)
        return await documents.add_document(
            session,
            knowledge,
            context.billing,
            assistant,
            title=body.title,
            source_format=SourceFormat.TEXT,
            text=body.text,
        )


async def _document_from_upload(
    request: Request, user: User, context: AppContext, assistant_id: int
) -> KnowledgeDocument:
    knowledge = _knowledge(context)
    config = context.media
    form = MultipartUpload(request, config.max_upload_bytes)
    async with read_session(context.sessionmaker) as session:
        await documents.owned_assistant(session, user, assistant_id)
        await policy.check_upload_allowed(session, user.id, config)
    async with aclosing(form.file_chunks()) as chunks:
        upload = await storage.spool_upload(chunks, config)
    try:
        source_format = detect_format(form.filename, upload.head)
    except AppError:
        await upload.discard()
        raise
    async with unit_of_work(context.sessionmaker, context.broker) as session:
        try:
            assistant = await documents.owned_assistant(session, user, assistant_id)
            # Refused before the file is stored: a 402 leaves nothing behind.
            await billing.check_covered(
                session,
                context.billing,
                assistant.owner_id,
                billing.worst_case_micros(knowledge.embeddings.model, upload.size),
            )
        except AppError:
            await upload.discard()
            raise
        media = await storage.store_upload(
            session,
            context.storage,
            config,
            user.id,
            upload,
            declared_kind=MediaKind.DOCUMENT,
            filename=form.filename,
        )
        return await documents.add_document(
            session,
            knowledge,
            context.billing,
            assistant,
            title=form.fields.get("title"),
            source_format=source_format,
            media=media,
        )


@router.post(
    "/{assistant_id}/documents",
    response_model=DocumentView,
    status_code=201,
    openapi_extra=ADD_DOCUMENT_BODY,
    responses=errors(400, 402, 413, 415, 422, 429, 503),
)
async def add_document(
    assistant_id: Id, request: Request, user: Caller, context: Context
) -> DocumentView:
    """A document for the assistant's knowledge: a file (multipart field `file`, optional
    `title`) or pasted text (JSON `{title, text}`). It is processed in the background:
    `knowledge_progress` socket frames follow it to `ready` or `failed`. The owner's balance
    must cover embedding it (402 otherwise, nothing stored)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        document = await _document_from_text(request, user, context, assistant_id)
    else:
        document = await _document_from_upload(request, user, context, assistant_id)
    return DocumentView.model_validate(document)


@router.get("/{assistant_id}/documents", response_model=list[DocumentView])
async def list_documents(
    assistant_id: Id, user: Caller, session: ReadSession
) -> list[DocumentView]:
    assistant = await documents.owned_assistant(session, user, assistant_id)
    return [
        DocumentView.model_validate(document)
        for document in await documents.list_documents(session, assistant)
    ]


@router.get("/{assistant_id}/documents/{document_id}", response_model=DocumentView)
async def get_document(
    assistant_id: Id, document_id: Id, user: Caller, session: ReadSession
) -> DocumentView:
    assistant = await documents.owned_assistant(session, user, assistant_id)
    return DocumentView.model_validate(
        await documents.get_document(session, assistant, document_id)
    )


@router.delete("/{assistant_id}/documents/{document_id}", status_code=204)
async def delete_document(
    assistant_id: Id, document_id: Id, user: Caller, session: Session, context: Context
) -> Response:
    """The document and its chunks go; the assistant stops answering from it at once."""
    assistant = await documents.owned_assistant(session, user, assistant_id)
    await documents.delete_document(session, context.billing, assistant, document_id)
    return Response(status_code=204)


@router.post(
    "/{assistant_id}/retrieval-preview",
    response_model=RetrievalPreviewView,
    responses=errors(400, 422, 503),
)
async def retrieval_preview(
    assistant_id: Id,
    body: RetrievalQuestion,
    user: Caller,
    session: ReadSession,
    context: Context,
) -> RetrievalPreviewView:
    """What the assistant would read before answering `question`: the passages, best first,
    with their scores, documents and sections."""
    knowledge = _knowledge(context)
    assistant = await documents.owned_assistant(session, user, assistant_id)
    try:
        found = await retrieval.retrieve(session, knowledge, assistant, body.question)
    except LLMError as exc:
        raise ServiceUnavailable(exc.message, code=f"embeddings_{exc.code}") from exc
    return RetrievalPreviewView.of(body.question, found)
