"""Uploaded knowledge files in the database, read as documents at uploads/<name>; the skipped files' reasons."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, defer

from service.db import utcnow
from service.errors import BadInput
from service.retrieval.documents import LoadResult, Skipped, parse_bytes, too_large
from service.retrieval.models import KbFile, KbSkipped, UploadStatus
from service.retrieval.sources import SourceLimits, is_candidate

UPLOADS = "uploads"  # the folder uploaded files appear in (their paths, ids and `kb export`)


def upload_path(name: str) -> str:
    return f"{UPLOADS}/{name}"


def clean_file_name(filename: str) -> str:
    """The file's own name (no folders), or BadInput: a name is what the documents' ids and paths come from."""
    name = PurePath(filename.replace("\\", "/")).name.strip()
    if not name or not is_candidate(name) or len(name) > 200:
        raise BadInput(f"not a usable file name: {filename!r}", detail={"name": filename})
    return name


def get_file(session: Session, name: str, *, with_data: bool = True) -> KbFile | None:
    """An upload; without its bytes for its status."""
    query = select(KbFile).where(KbFile.name == name)
    return session.scalars(query if with_data else query.options(defer(KbFile.data))).first()


def list_files(session: Session, *, with_data: bool = True) -> list[KbFile]:
    """Every upload; without its bytes for a listing."""
    query = select(KbFile).order_by(KbFile.name)
    return list(session.scalars(query if with_data else query.options(defer(KbFile.data))))


def put_file(session: Session, *, name: str, raw: bytes, uploaded_by: str) -> KbFile:
    """Store (or replace) an upload, queued for indexing."""
    row = session.get(KbFile, name) or KbFile(name=name)
    row.data, row.size, row.sha256 = raw, len(raw), hashlib.sha256(raw).hexdigest()
    row.uploaded_by, row.uploaded_at = uploaded_by, utcnow()
    row.status, row.done, row.total, row.message = UploadStatus.queued, 0, 0, None
    session.add(row)
    session.flush()
    return row


def set_progress(session: Session, name: str, **values: object) -> None:
    session.execute(update(KbFile).where(KbFile.name == name).values(**values))
    session.flush()


def delete_file(session: Session, name: str) -> None:
    session.execute(delete(KbFile).where(KbFile.name == name))
    session.execute(delete(KbSkipped).where(KbSkipped.path == upload_path(name)))
    session.flush()


def parse_upload(row: KbFile, limits: SourceLimits) -> LoadResult:
    """The documents an upload holds, or its reason as a Skipped entry."""
    result = LoadResult()
    reason = too_large(row.size, limits)
    try:
        if reason:
            raise ValueError(reason)
        modified = row.uploaded_at.date()
        result.documents = parse_bytes(row.data, Path(UPLOADS) / row.name, modified=modified, limits=limits)
    except ValueError as exc:
        result.skipped.append(Skipped(upload_path(row.name), str(exc)))
    return result


def load_uploads(session: Session, limits: SourceLimits | None) -> LoadResult:
    """Every upload's documents; unreadable uploads are reported, not fatal."""
    result = LoadResult()
    for row in _one_at_a_time(session):
        one = parse_upload(row, limits or SourceLimits())
        result.documents += one.documents
        result.skipped += one.skipped
    return result


def _one_at_a_time(session: Session) -> Iterator[KbFile]:
    """Every upload with its bytes, one in memory at a time."""
    for name in [row.name for row in list_files(session, with_data=False)]:
        row = get_file(session, name)
        if row is not None:
            yield row
            session.expunge(row)


def merge(folder: LoadResult, uploads: LoadResult) -> LoadResult:
    """The folder's documents plus the uploads; an upload replaces a folder file at the same path (the copy
    `kb export` wrote), and an upload whose id another file holds is skipped."""
    upload_paths = {d.path for d in uploads.documents} | {s.path for s in uploads.skipped}
    merged = LoadResult(
        documents=[d for d in folder.documents if d.path not in upload_paths],
        skipped=[s for s in folder.skipped if s.path not in upload_paths],
    )
    seen = {d.doc_id: d.path for d in merged.documents}
    for doc in uploads.documents:
        if doc.doc_id in seen:
            merged.skipped.append(Skipped(doc.path, f"duplicate id {doc.doc_id!r} (also in {seen[doc.doc_id]})"))
            continue
        seen[doc.doc_id] = doc.path
        merged.documents.append(doc)
    merged.skipped += uploads.skipped
    return merged


def save_skipped(session: Session, skipped: Iterable[Skipped]) -> None:
    """Replace the list of skipped files with the last ingest's."""
    session.execute(delete(KbSkipped))
    now = utcnow()
    for path, reason in {s.path: s.reason for s in skipped}.items():
        session.add(KbSkipped(path=path, reason=reason, seen_at=now))
    session.flush()


def mark_skipped(session: Session, path: str, reason: str | None) -> None:
    """Record (or, with None, clear) why one file is not indexed."""
    session.execute(delete(KbSkipped).where(KbSkipped.path == path))
    if reason is not None:
        session.add(KbSkipped(path=path, reason=reason, seen_at=utcnow()))
    session.flush()


def list_skipped(session: Session) -> list[KbSkipped]:
    return list(session.scalars(select(KbSkipped).order_by(KbSkipped.path)))


def settle_uploads(session: Session, skipped: Iterable[Skipped]) -> None:
    """After a full ingest: each upload is indexed, or failed with its reason."""
    reasons = {s.path: s.reason for s in skipped}
    for row in list_files(session, with_data=False):
        reason = reasons.get(upload_path(row.name))
        row.status = UploadStatus.failed if reason else UploadStatus.indexed
        row.message = reason
    session.flush()


def export_files(session: Session, directory: Path) -> list[str]:
    """Write every upload's original to directory (unchanged files untouched); returns the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for row in _one_at_a_time(session):
        path = directory / row.name
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256:
            continue
        path.write_bytes(row.data)
        written.append(row.name)
    return written
