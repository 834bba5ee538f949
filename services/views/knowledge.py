"""Assistants' knowledge as clients see it: documents with their processing state, and what
retrieval would find for a question."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models import DocumentStatus
from services.knowledge.retrieval import Passage, Retrieval


class DocumentView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    assistant_id: int
    title: str
    status: DocumentStatus
    chunks: int = Field(description="how many chunks its text was split into (0 until then)")
    embedded_chunks: int = Field(description="how many of them are embedded so far")
    error: str | None = Field(description="why it failed (status failed)")
    source_format: str = Field(description="pdf, docx, html or text")
    embedding_model: str | None
    cost_micros: int = Field(description="what embedding it cost its owner, in micro-credits")
    created_at: datetime
    updated_at: datetime


class PassageView(BaseModel):
    chunk_id: int
    document_id: int
    document_title: str
    section: str | None
    text: str
    score: float = Field(description="reciprocal-rank-fusion score; higher is better")

    @classmethod
    def of(cls, passage: Passage) -> PassageView:
        return cls(
            chunk_id=passage.chunk_id,
            document_id=passage.document_id,
            document_title=passage.document_title,
            section=passage.section,
            text=passage.text,
            score=passage.score,
        )


class RetrievalPreviewView(BaseModel):
    question: str
    passages: list[PassageView]
    took_ms: float

    @classmethod
    def of(cls, question: str, retrieval: Retrieval) -> RetrievalPreviewView:
        return cls(
            question=question,
            passages=[PassageView.of(passage) for passage in retrieval.passages],
            took_ms=round(retrieval.seconds * 1000, 2),
        )
