"""Pydantic I/O for search and ingestion."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.text import NOT_BLANK, SafeStr

DocTypeName = Literal["plan", "faq", "risk", "doc"]


class SearchRequest(BaseModel):
    query: SafeStr = Field(
        description="A question or objection, Japanese or English (at most 2,000 characters).",
        json_schema_extra=NOT_BLANK,
    )
    k: int = Field(default=5, ge=1, le=50)
    types: list[DocTypeName] | None = Field(default=None, description="Only these document types.")
    lang: Literal["ja", "en"] | None = Field(default=None, description="Only documents in this language.")


class Hit(BaseModel):
    rank: int
    doc_id: str
    chunk_id: str
    title: str
    type: str
    lang: str
    section: str
    score: float = Field(description="Fused score of dense and lexical search (weighted: 0–1; rrf: sum of 1/(k+rank)).")
    dense_score: float | None = Field(description="Cosine similarity to the query, when dense search found it.")
    lexical_score: float | None = Field(description="BM25 score, when lexical search found it.")
    text: str
    url: str = Field(description="The source's /kb page, opened at this passage (/kb/{doc_id}?passage=n#passage).")


class SearchResponse(BaseModel):
    query: str
    hits: list[Hit]


class SkippedFile(BaseModel):
    path: str
    reason: str


class IngestReport(BaseModel):
    knowledge_dir: str
    documents: int
    chunks: int
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: int
    skipped: list[SkippedFile]
    seconds: float


class KbDocumentOut(BaseModel):
    doc_id: str
    title: str
    type: str
    lang: str
    chunks: int
    path: str = Field(description="The source file: under the knowledge folder, or uploads/<name> for an upload.")
    origin: str = Field(description="knowledge (the folder or an upload), or the domain that put the page (review).")
    indexed_at: datetime


class KbOverview(BaseModel):
    documents: list[KbDocumentOut]
    skipped: list[SkippedFile] = Field(description="Files the last ingest could not read, with the reason.")


class UploadOut(BaseModel):
    name: str
    status: str = Field(description="queued, indexing, indexed or failed")
    done: int = Field(description="Chunks embedded so far.")
    total: int
    percent: int
    message: str | None = Field(description="Why indexing failed.")
    url: str = Field(description="Poll this for the progress.")


class ChunkOut(BaseModel):
    chunk_id: str
    index: int
    section: str
    tokens: int
    text: str
    embedded_text: str = Field(description="What the embedder was given: the document title, then the chunk.")
