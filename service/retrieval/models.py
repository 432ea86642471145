"""Rows for indexed knowledge documents (the vectors live in Chroma)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Date, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, StrEnumType, UTCDateTime, utcnow

KNOWLEDGE = "knowledge"  # the origin of documents ingested from the knowledge folder


class KbDocument(Base):
    __tablename__ = "kb_documents"

    doc_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(8))
    root_causes: Mapped[list[str]] = mapped_column(JSON)
    updated: Mapped[date | None] = mapped_column(Date, nullable=True)
    path: Mapped[str] = mapped_column(String(1000))
    content_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    chunks: Mapped[int] = mapped_column(Integer)
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Who owns the row (added by 0005): "knowledge" for files ingest indexes, else the domain that put the page,
    # e.g. "review" for approved answers. Ingest adds and removes only its own rows.
    origin: Mapped[str] = mapped_column(String(16), default=KNOWLEDGE, server_default=KNOWLEDGE)


class UploadStatus(StrEnum):
    """An uploaded file's indexing: queued, indexing (with progress), then indexed or failed."""

    queued = "queued"
    indexing = "indexing"
    indexed = "indexed"
    failed = "failed"


class KbFile(Base):
    """An uploaded knowledge file's original (added by 0012): in the database, so every process (on any machine)
    indexes it on its next ingest and `nemawashi kb export` writes it out. Its progress is here too, so a page
    polling any process sees it."""

    __tablename__ = "kb_files"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # indexed as uploads/<name>
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[UploadStatus] = mapped_column(StrEnumType(UploadStatus), default=UploadStatus.queued)
    done: Mapped[int] = mapped_column(Integer, default=0)  # chunks embedded so far
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class KbSkipped(Base):
    """A knowledge file the last ingest could not read, with the reason (added by 0012), for the admin page."""

    __tablename__ = "kb_skipped"

    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
