"""Rows for indexed knowledge documents (the vectors live in Chroma)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime

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
