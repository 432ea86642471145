"""Index a knowledge folder: only changed documents are re-embedded, deleted ones are removed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from service.logging import get_logger
from service.retrieval import kb_files, repository
from service.retrieval.chunking import Chunk, Chunker, chunk_document
from service.retrieval.documents import Document, load_documents
from service.retrieval.schemas import IngestReport, SkippedFile
from service.retrieval.sources import SourceLimits
from service.retrieval.store import ChunkStore

# Part of every document's index hash: bump it when chunking or what the embedder sees changes, so that an existing
# index is re-embedded by the next ingest (or start) instead of serving chunks cut or embedded the old way.
# 2: the embedder sees the headings above each chunk (Chunk.context).
CHUNKER_VERSION = "2"
EMBED_BATCH = 64  # chunks per embedding call, across documents
Progress = Callable[[int, int], None]
log = get_logger("ingest")


def index_hash(doc: Document, max_tokens: int) -> str:
    """Changes when the file or the way it is chunked changes."""
    return hashlib.sha256(f"{doc.content_hash}|{max_tokens}|{CHUNKER_VERSION}".encode()).hexdigest()


def embedding_text(doc: Document, chunk: Chunk) -> str:
    """What the embedder sees: the document title and the headings above the chunk give every chunk its context."""
    return embedder_input(doc.meta.title, chunk.context, chunk.text)


def embedder_input(title: str, context: str, text: str) -> str:
    """A chunk's text as it is embedded: title, the headings above it, the chunk (the admin page previews this)."""
    return "\n".join(part for part in (title, context, text) if part)


def _chunk_meta(doc: Document, chunk: Chunk, doc_hash: str) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "doc_hash": doc_hash,
        "title": doc.meta.title,
        "type": doc.meta.type,
        "lang": doc.meta.lang,
        "root_causes": ",".join(doc.meta.root_causes),
        "section": chunk.section,
        "context": chunk.context,
        "index": chunk.index,
        "tokens": chunk.tokens,
        "path": doc.path,
        "updated": doc.meta.updated.isoformat() if doc.meta.updated else "",
    }


def _batches(planned: list[tuple[Document, list[Chunk]]], size: int) -> list[list[tuple[Document, list[Chunk]]]]:
    """Whole documents grouped until a group holds at least `size` chunks (a long document is a group alone)."""
    groups: list[list[tuple[Document, list[Chunk]]]] = [[]]
    for item in planned:
        if groups[-1] and sum(len(chunks) for _, chunks in groups[-1]) + len(item[1]) > size:
            groups.append([])
        groups[-1].append(item)
    return [g for g in groups if g]


def embed_and_store(
    store: ChunkStore,
    docs: list[Document],
    *,
    max_tokens: int,
    progress: Progress | None,
    chunker: Chunker = chunk_document,
) -> dict[str, int]:
    """Chunk, embed and upsert docs; returns chunk counts per doc id.

    Chunks of several documents go to the embedder in one call (many small FAQ files would otherwise be one call
    each); a document's chunks are always written together, after all of them are embedded."""
    planned = [(doc, chunker(doc, max_tokens=max_tokens)) for doc in docs]
    total = sum(len(chunks) for _, chunks in planned)
    done = 0
    if progress:
        progress(0, total)
    for group in _batches(planned, EMBED_BATCH):
        texts = [embedding_text(doc, c) for doc, chunks in group for c in chunks]
        vectors = store.embedder.embed_passages(texts)
        pairs = [(doc, c, index_hash(doc, max_tokens)) for doc, chunks in group for c in chunks]
        store.delete_docs([doc.doc_id for doc, _ in group])
        store.add(
            [c.chunk_id for _, c, _ in pairs],
            [c.text for _, c, _ in pairs],
            [_chunk_meta(doc, c, doc_hash) for doc, c, doc_hash in pairs],
            vectors,
        )
        done += len(texts)
        if progress:
            progress(done, total)
    return {doc.doc_id: len(chunks) for doc, chunks in planned}


def ingest_knowledge(
    session: Session,
    store: ChunkStore,
    *,
    knowledge_dir: Path,
    max_tokens: int,
    rebuild: bool = False,
    progress: Progress | None = None,
    limits: SourceLimits | None = None,
    chunker: Chunker = chunk_document,
) -> IngestReport:
    """Bring the index in line with knowledge_dir and the uploads stored in the database; files that cannot be read
    are reported and skipped, the rest indexed (limits: the size and cell caps from Settings,
    SourceLimits.from_settings; chunker: another way to cut documents, for benchmarks/chunking.py)."""
    started = time.perf_counter()
    loaded = kb_files.merge(load_documents(knowledge_dir, limits), kb_files.load_uploads(session, limits))
    if rebuild:
        store.reset()
    store.open_for_writing()
    on_disk = store.indexed_docs()
    indexed = {doc_id: doc_hash for doc_id, (doc_hash, _) in on_disk.items()}
    current = {doc.doc_id: doc for doc in loaded.documents}
    changed = [doc for doc in loaded.documents if indexed.get(doc.doc_id) != index_hash(doc, max_tokens)]
    # A document whose file is broken now keeps its last good version rather than vanishing.
    broken_paths = {s.path for s in loaded.skipped}
    kept_stale = {d for d, (_, p) in on_disk.items() if p in broken_paths and d not in current}
    removed = sorted(set(indexed) - set(current) - kept_stale)

    chunk_counts = embed_and_store(store, changed, max_tokens=max_tokens, progress=progress, chunker=chunker)
    store.delete_docs(removed)
    repository.save_documents(session, [(doc, chunk_counts[doc.doc_id]) for doc in changed])
    repository.delete_documents_except(session, set(current) | kept_stale)
    kb_files.save_skipped(session, loaded.skipped)
    kb_files.settle_uploads(session, loaded.skipped)

    report = IngestReport(
        knowledge_dir=str(knowledge_dir),
        documents=len(current),
        chunks=store.count(),
        added=sorted(d.doc_id for d in changed if d.doc_id not in indexed),
        updated=sorted(d.doc_id for d in changed if d.doc_id in indexed),
        removed=removed,
        unchanged=len(current) - len(changed),
        skipped=[SkippedFile(path=s.path, reason=s.reason) for s in loaded.skipped],
        seconds=round(time.perf_counter() - started, 2),
    )
    log.info(
        "ingest.done",
        documents=report.documents,
        chunks=report.chunks,
        added=len(report.added),
        updated=len(report.updated),
        removed=len(report.removed),
        skipped=len(report.skipped),
        seconds=report.seconds,
    )
    return report


def catch_up_uploads(session: Session, store: ChunkStore, *, max_tokens: int, limits: SourceLimits | None) -> int:
    """Index the uploads this store lacks (another process took them, or this one stopped while indexing): a
    restart keeps every upload without re-reading the whole folder. Returns how many documents were embedded."""
    loaded = kb_files.load_uploads(session, limits)
    indexed = {doc_id: doc_hash for doc_id, (doc_hash, _) in store.indexed_docs().items()}
    changed = [doc for doc in loaded.documents if indexed.get(doc.doc_id) != index_hash(doc, max_tokens)]
    chunk_counts = embed_and_store(store, changed, max_tokens=max_tokens, progress=None)
    repository.save_documents(session, [(doc, chunk_counts[doc.doc_id]) for doc in changed])
    kb_files.settle_uploads(session, loaded.skipped)
    if changed:
        log.info("ingest.uploads_caught_up", documents=len(changed))
    return len(changed)
