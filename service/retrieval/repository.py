"""SQL access for knowledge documents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.retrieval.documents import Document
from service.retrieval.models import KNOWLEDGE, KbDocument


def get_document(session: Session, doc_id: str) -> KbDocument | None:
    return session.get(KbDocument, doc_id)


def list_documents(session: Session) -> list[KbDocument]:
    return list(session.scalars(select(KbDocument).order_by(KbDocument.type, KbDocument.doc_id)))


def save_documents(session: Session, docs: Iterable[tuple[Document, int]]) -> None:
    """Insert or update rows for (document, chunk count) pairs."""
    now = datetime.now(UTC)
    for doc, chunks in docs:
        row = session.get(KbDocument, doc.doc_id) or KbDocument(doc_id=doc.doc_id)
        row.title, row.type, row.lang = doc.meta.title, doc.meta.type, doc.meta.lang
        row.root_causes, row.updated, row.path = list(doc.meta.root_causes), doc.meta.updated, doc.path
        row.content_hash, row.body, row.chunks, row.indexed_at = doc.content_hash, doc.body, chunks, now
        row.origin = KNOWLEDGE
        session.add(row)
    session.flush()


def put_page(session: Session, row: KbDocument) -> None:
    session.add(row)
    session.flush()


def delete_document(session: Session, doc_id: str) -> None:
    row = session.get(KbDocument, doc_id)
    if row is not None:
        session.delete(row)
        session.flush()


def delete_documents_except(session: Session, keep: set[str]) -> None:
    """Remove rows of documents no longer in the knowledge folder; pages other domains put (see origin) stay."""
    stale = delete(KbDocument).where(KbDocument.origin == KNOWLEDGE)
    session.execute(stale.where(KbDocument.doc_id.not_in(keep)) if keep else stale)
    session.flush()


def knowledge_mark(session: Session) -> tuple[int, int, str]:
    """What changes when any process indexes, replaces or deletes a knowledge document: how many there are, their
    chunks and the latest indexing time (one cheap query)."""
    count, chunks, latest = session.execute(
        select(func.count(), func.coalesce(func.sum(KbDocument.chunks), 0), func.max(KbDocument.indexed_at)).where(
            KbDocument.origin == KNOWLEDGE
        )
    ).one()
    return int(count), int(chunks), str(latest)


def knowledge_ids(session: Session) -> set[str]:
    """The ids of the documents the vector store should hold (the knowledge folder's and the uploads')."""
    return set(session.scalars(select(KbDocument.doc_id).where(KbDocument.origin == KNOWLEDGE)))
