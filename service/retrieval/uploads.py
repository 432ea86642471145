"""The knowledge-base admin's work: take an upload, index it with progress, delete it, re-index everything."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope
from service.errors import BadInput, NotFound, problem
from service.logging import get_logger
from service.retrieval import kb_files, repository
from service.retrieval.documents import Document, parse_bytes, too_large
from service.retrieval.ingest import embed_and_store, embedder_input, index_hash, ingest_knowledge
from service.retrieval.models import KbDocument, KbFile, UploadStatus
from service.retrieval.schemas import IngestReport
from service.retrieval.service import KnowledgeIndex
from service.retrieval.source_problems import SourceProblem, error_problem
from service.retrieval.sources import SourceLimits
from service.retrieval.store import StoredChunk

log = get_logger("kb.admin")
# One writer to the index at a time in this process: an upload and a re-index must not interleave their deletes.
WRITING = threading.Lock()


@dataclass(frozen=True)
class Indexing:
    """What indexing needs besides the database: the index, the chunk size and the file limits."""

    knowledge: KnowledgeIndex
    knowledge_dir: Path
    max_tokens: int
    limits: SourceLimits

    @classmethod
    def from_settings(cls, settings: Settings, knowledge: KnowledgeIndex) -> Indexing:
        return cls(knowledge, settings.knowledge_dir, settings.chunk_max_tokens, SourceLimits.from_settings(settings))


def check_upload(session: Session, *, name: str, raw: bytes, limits: SourceLimits) -> list[Document]:
    """The documents an upload would add, or BadInput with the reason it is refused (nothing is stored then); the
    error's detail has the reason's code and values (source_problems.py), for the admin page's wording."""
    reason = too_large(len(raw), limits)
    if reason:
        raise BadInput(reason, detail={"name": name, **error_problem(ValueError(reason))}, status_code=413)
    path = Path(kb_files.UPLOADS) / name
    try:
        docs = parse_bytes(raw, path, modified=datetime.now(UTC).date(), limits=limits)
    except ValueError as exc:
        raise BadInput(str(exc), detail={"name": name, **error_problem(exc)}) from exc
    taken = session.execute(
        select(KbDocument.doc_id, KbDocument.path).where(
            KbDocument.doc_id.in_([d.doc_id for d in docs]), KbDocument.path != path.as_posix()
        )
    ).all()
    if taken:
        doc_id, other = taken[0]
        raise BadInput(
            f"duplicate id {doc_id!r} (also in {other}): change its id or delete that file first",
            detail=problem(SourceProblem.duplicate_id, doc_id=doc_id, other=other),
        )
    return docs


def store_upload(session: Session, *, filename: str, raw: bytes, uploaded_by: str, limits: SourceLimits) -> KbFile:
    """Check an upload and keep its original in the database, queued for indexing."""
    try:
        name = kb_files.clean_file_name(filename)
    except BadInput as exc:  # the same error, with the code the admin page words it by
        raise BadInput(exc.message, detail=problem(SourceProblem.bad_file_name, name=filename)) from exc
    check_upload(session, name=name, raw=raw, limits=limits)
    row = kb_files.put_file(session, name=name, raw=raw, uploaded_by=uploaded_by)
    log.info("kb.upload", name=name, size=len(raw), by=uploaded_by)
    return row


def index_upload(sessions: sessionmaker[Session], indexing: Indexing, *, name: str) -> None:
    """Embed one stored upload, its progress written to its row (any process can show it); runs after the upload's
    response. Its earlier version's documents are replaced."""
    with session_scope(sessions) as session:
        row = kb_files.get_file(session, name)
        if row is None:
            return
        loaded = kb_files.parse_upload(row, indexing.limits)

    def progress(done: int, total: int) -> None:
        with session_scope(sessions) as session:
            kb_files.set_progress(session, name, status=UploadStatus.indexing, done=done, total=total)

    try:
        if loaded.skipped:
            raise ValueError(loaded.skipped[0].reason)
        with WRITING:
            store = indexing.knowledge.store
            store.open_for_writing()
            counts = embed_and_store(store, loaded.documents, max_tokens=indexing.max_tokens, progress=progress)
            with session_scope(sessions) as session:
                stale = _documents_at(session, kb_files.upload_path(name)) - set(counts)
                store.delete_docs(sorted(stale))
                for doc_id in stale:
                    repository.delete_document(session, doc_id)
                repository.save_documents(session, [(doc, counts[doc.doc_id]) for doc in loaded.documents])
                kb_files.set_progress(session, name, status=UploadStatus.indexed, message=None)
                kb_files.mark_skipped(session, kb_files.upload_path(name), None)
            indexing.knowledge.refresh()
    except Exception as exc:  # the row says why; the page shows it
        log.warning("kb.upload_failed", name=name, error=type(exc).__name__)
        with session_scope(sessions) as session:
            kb_files.set_progress(session, name, status=UploadStatus.failed, message=str(exc)[:2000])
            kb_files.mark_skipped(session, kb_files.upload_path(name), str(exc)[:2000])
        return
    log.info("kb.upload_indexed", name=name, documents=len(counts), chunks=sum(counts.values()))


def _documents_at(session: Session, path: str) -> set[str]:
    return set(session.scalars(select(KbDocument.doc_id).where(KbDocument.path == path)))


def delete_upload(session: Session, indexing: Indexing, *, name: str) -> list[str]:
    """Remove an uploaded file: its documents' chunks, their rows and the stored original. Returns the doc ids."""
    if kb_files.get_file(session, name, with_data=False) is None:
        raise NotFound(f"no uploaded file named {name!r}", detail={"name": name})
    with WRITING:
        doc_ids = sorted(_documents_at(session, kb_files.upload_path(name)))
        if indexing.knowledge.store.exists():
            indexing.knowledge.store.delete_docs(doc_ids)
        for doc_id in doc_ids:
            repository.delete_document(session, doc_id)
        kb_files.delete_file(session, name)
        indexing.knowledge.refresh()
    log.info("kb.upload_deleted", name=name, documents=len(doc_ids))
    return doc_ids


def knowledge_mark(sessions: sessionmaker[Session]) -> tuple[int, int, str]:
    """The database's knowledge mark now (see repository.knowledge_mark): read it before loading the index, and a
    KnowledgeSync given it reloads only for what changed after."""
    with session_scope(sessions) as session:
        return repository.knowledge_mark(session)


@dataclass
class KnowledgeSync:
    """Brings this process's index in line with the uploads, deletions and re-indexing any process made (the
    database is the truth). A store of its own (embedded Chroma) embeds the uploads it lacks and drops the uploads
    the database no longer lists; a shared store (a Chroma server) already has them. The keyword index is rebuilt
    either way. Cheap when nothing changed: one query."""

    sessions: sessionmaker[Session]
    indexing: Indexing
    shared_store: bool
    on_change: Callable[[], object] | None = None  # what else is built from the documents (the FAQ index)
    mark: tuple[int, int, str] | None = None  # the database's knowledge mark at the last load (None: reload first)

    def __call__(self) -> bool:
        """One round; whether the index was reloaded."""
        mark = knowledge_mark(self.sessions)
        if mark == self.mark:
            return False
        with WRITING:  # after an upload or a delete this process is making, never in the middle of one
            if not self.shared_store:
                self._catch_up()
            self.indexing.knowledge.refresh()
        if self.on_change is not None:
            self.on_change()
        self.mark = mark
        return True

    def _catch_up(self) -> None:
        """This process's own store only (the database is left alone): embed the uploads the database lists whose
        chunks this store lacks or holds in an older version, and drop the uploads it no longer lists."""
        store = self.indexing.knowledge.store
        indexed = store.indexed_docs()
        with session_scope(self.sessions) as session:
            listed = repository.knowledge_ids(session)
            loaded = kb_files.load_uploads(session, self.indexing.limits)
        max_tokens = self.indexing.max_tokens
        missing = [
            doc
            for doc in loaded.documents
            if doc.doc_id in listed and indexed.get(doc.doc_id, ("", ""))[0] != index_hash(doc, max_tokens)
        ]
        embed_and_store(store, missing, max_tokens=max_tokens, progress=None)
        with session_scope(self.sessions) as session:  # read again: an upload may have been deleted meanwhile
            listed = repository.knowledge_ids(session)
        uploaded = (doc for doc, (_, path) in store.indexed_docs().items() if path.startswith(f"{kb_files.UPLOADS}/"))
        gone = sorted(doc for doc in uploaded if doc not in listed)
        store.delete_docs(gone)
        if missing or gone:
            log.info("kb.synced", embedded=len(missing), deleted=len(gone))


def reindex(session: Session, indexing: Indexing) -> IngestReport:
    """The knowledge folder and every upload indexed again (only what changed is re-embedded)."""
    with WRITING:
        report = ingest_knowledge(
            session,
            indexing.knowledge.store,
            knowledge_dir=indexing.knowledge_dir,
            max_tokens=indexing.max_tokens,
            limits=indexing.limits,
        )
        indexing.knowledge.refresh()
    return report


@dataclass(frozen=True)
class ChunkView:
    """One chunk as stored, and the text the embedder was given for it."""

    chunk: StoredChunk
    embedded: str


def document_chunks(session: Session, knowledge: KnowledgeIndex, *, doc_id: str) -> tuple[KbDocument, list[ChunkView]]:
    """A document and its chunks in order, each with the text the embedder saw."""
    doc = repository.get_document(session, doc_id)
    if doc is None:
        raise NotFound(f"no document with id {doc_id!r} in the knowledge base", detail={"doc_id": doc_id})
    if not knowledge.loaded:
        knowledge.refresh()
    chunks = sorted(
        (c for c in knowledge.chunks.values() if c.meta.get("doc_id") == doc_id), key=lambda c: c.meta.get("index", 0)
    )
    return doc, [
        ChunkView(c, embedder_input(c.meta.get("title", ""), c.meta.get("context", ""), c.text)) for c in chunks
    ]


def upload_names(session: Session) -> dict[str, KbFile]:
    """Uploaded files by their path (uploads/<name>)."""
    return {kb_files.upload_path(row.name): row for row in kb_files.list_files(session, with_data=False)}


def get_upload(session: Session, *, name: str) -> KbFile:
    """An uploaded file's row (its progress), or NotFound."""
    row = kb_files.get_file(session, name, with_data=False)
    if row is None:
        raise NotFound(f"no uploaded file named {name!r}", detail={"name": name})
    return row
