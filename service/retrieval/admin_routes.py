"""HTTP for the knowledge-base admin page (/admin/kb) and its API (/v1/kb/...): reviewers read, admins change."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from service.auth.deps import COOKIE_NAME, ReaderDep, SignedInAdminDep
from service.auth.service import csrf_token
from service.deps import SessionDep, SessionsDep, SettingsDep
from service.errors import BadInput, error_responses, problem
from service.retrieval import kb_files, repository, service, uploads
from service.retrieval.models import KbFile
from service.retrieval.schemas import ChunkOut, IngestReport, KbDocumentOut, KbOverview, SkippedFile, UploadOut
from service.retrieval.service import SearchOptions
from service.retrieval.source_problems import SourceProblem, reason_text
from service.retrieval.sources import CONVERTERS, MB
from service.web.pages import render_page

router = APIRouter(responses=error_responses(401, 403, 422))
HIT_TESTING_K = 10


def get_indexing(request: Request, settings: SettingsDep) -> uploads.Indexing:
    return uploads.Indexing.from_settings(settings, request.app.state.knowledge)


IndexingDep = Annotated[uploads.Indexing, Depends(get_indexing)]


def _upload_out(row: KbFile) -> UploadOut:
    percent = 100 if row.status == "indexed" else (100 * row.done // row.total if row.total else 0)
    return UploadOut(
        name=row.name, status=row.status, done=row.done, total=row.total, percent=percent, message=row.message,
        url=f"/v1/kb/files/{row.name}",
    )  # fmt: skip


def _page(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    cookie = request.cookies.get(COOKIE_NAME)
    response = render_page(request, name, {"csrf": csrf_token(cookie) if cookie else "", **context}, section="kb_admin")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/admin/kb", response_class=HTMLResponse, include_in_schema=False)
def admin_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    indexing: IndexingDep,
    reviewer: ReaderDep,
    q: Annotated[str, Query(max_length=2000)] = "",
) -> HTMLResponse:
    """The documents, the skipped files, hit testing; for admins also upload, delete and re-index."""
    hits = []
    if q.strip():
        query = service.clean_query(q, max_chars=settings.max_query_chars)
        options = SearchOptions.from_settings(settings)
        hits = service.search_passages(indexing.knowledge, query=query, k=HIT_TESTING_K, options=options)
    context = {
        "reviewer": reviewer,
        "docs": repository.list_documents(session),
        "uploads": uploads.upload_names(session),
        "skipped": kb_files.list_skipped(session),
        "reason_text": reason_text,  # a stored English reason in the page's language
        "q": q,
        "hits": hits,
        "limit_mb": f"{indexing.limits.max_file_bytes / MB:g}",
        "accept": ",".join(sorted(CONVERTERS)),
        "done": request.query_params.get("done", ""),
        "counts": {k: request.query_params.get(k, "") for k in ("documents", "chunks", "skipped")},
    }
    return _page(request, "kb_admin.html", context)


@router.get("/admin/kb/docs/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
def chunks_page(
    request: Request, doc_id: str, session: SessionDep, indexing: IndexingDep, reviewer: ReaderDep
) -> Response:
    """A document's chunks as the embedder sees them."""
    doc, chunks = uploads.document_chunks(session, indexing.knowledge, doc_id=doc_id)
    return _page(request, "kb_chunks.html", {"reviewer": reviewer, "doc": doc, "chunks": chunks})


@router.post("/admin/kb/reindex", include_in_schema=False)
def reindex_from_page(session: SessionDep, indexing: IndexingDep, admin: SignedInAdminDep) -> RedirectResponse:
    report = uploads.reindex(session, indexing)
    counts = {"documents": report.documents, "chunks": report.chunks, "skipped": len(report.skipped)}
    return RedirectResponse(f"/admin/kb?{urlencode({'done': 'reindexed', **counts})}", status_code=303)


@router.post("/admin/kb/files/{name}/delete", include_in_schema=False)
def delete_from_page(
    name: str, session: SessionDep, indexing: IndexingDep, admin: SignedInAdminDep
) -> RedirectResponse:
    uploads.delete_upload(session, indexing, name=name)
    return RedirectResponse("/admin/kb?done=deleted", status_code=303)


@router.get("/v1/kb/documents", response_model=KbOverview, tags=["knowledge base"])
def list_documents(session: SessionDep, reviewer: ReaderDep) -> KbOverview:
    """Every indexed document with its chunk count and source file, and the files the last ingest skipped."""
    docs = [KbDocumentOut.model_validate(d, from_attributes=True) for d in repository.list_documents(session)]
    skipped = [SkippedFile(path=s.path, reason=s.reason) for s in kb_files.list_skipped(session)]
    return KbOverview(documents=docs, skipped=skipped)


@router.get(
    "/v1/kb/documents/{doc_id}/chunks",
    response_model=list[ChunkOut],
    tags=["knowledge base"],
    responses=error_responses(404),
)
def list_chunks(doc_id: str, session: SessionDep, indexing: IndexingDep, reviewer: ReaderDep) -> list[ChunkOut]:
    """A document's chunks in order, with the text the embedder was given for each."""
    _, chunks = uploads.document_chunks(session, indexing.knowledge, doc_id=doc_id)
    return [_chunk_out(view) for view in chunks]


def _chunk_out(view: uploads.ChunkView) -> ChunkOut:
    meta = view.chunk.meta
    return ChunkOut(
        chunk_id=view.chunk.chunk_id,
        index=int(meta.get("index", 0)),
        section=meta.get("section", ""),
        tokens=int(meta.get("tokens", 0)),
        text=view.chunk.text,
        embedded_text=view.embedded,
    )


@router.post(
    "/v1/kb/files",
    status_code=202,
    response_model=UploadOut,
    tags=["knowledge base"],
    responses=error_responses(413, 409),
)
async def upload_file(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    sessions: SessionsDep,
    indexing: IndexingDep,
    admin: SignedInAdminDep,
) -> UploadOut:
    """Upload a knowledge file (multipart field `file`; the formats ingest reads, at most NEMAWASHI_KB_MAX_FILE_MB):
    it is checked, stored in the database and indexed after this answer; poll `url` for the progress. A file that
    cannot be read is refused with the reason (422; 413 over the size limit) and nothing is stored."""
    limit = indexing.limits.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        too_big = f"the file is larger than the {limit / MB:g} MB limit (NEMAWASHI_KB_MAX_FILE_MB)"
        raise BadInput(too_big, detail=problem(SourceProblem.too_large, limit_mb=f"{limit / MB:g}"), status_code=413)
    upload = (await request.form(max_files=1, max_fields=10)).get("file")
    if not isinstance(upload, UploadFile):
        raise BadInput("send the knowledge file as the multipart field `file`", detail=problem(SourceProblem.no_file))
    raw = await upload.read(limit + 1)
    row = await run_in_threadpool(  # converting a large Office file takes a while: not on the event loop
        uploads.store_upload,
        session,
        filename=upload.filename or "",
        raw=raw,
        uploaded_by=admin.name,
        limits=indexing.limits,
    )
    background.add_task(uploads.index_upload, sessions, indexing, name=row.name)
    return _upload_out(row)


@router.get("/v1/kb/files/{name}", response_model=UploadOut, tags=["knowledge base"], responses=error_responses(404))
def upload_status(name: str, session: SessionDep, reviewer: ReaderDep) -> UploadOut:
    """An uploaded file's indexing: queued, indexing (done of total chunks), indexed or failed with the reason."""
    return _upload_out(uploads.get_upload(session, name=name))


@router.delete("/v1/kb/files/{name}", response_model=list[str], tags=["knowledge base"], responses=error_responses(404))
def delete_file(name: str, session: SessionDep, indexing: IndexingDep, admin: SignedInAdminDep) -> list[str]:
    """Delete an uploaded file: its documents leave the index and its stored original is removed. Returns their ids."""
    return uploads.delete_upload(session, indexing, name=name)


@router.post("/v1/kb/reindex", response_model=IngestReport, tags=["knowledge base"])
def reindex(session: SessionDep, indexing: IndexingDep, admin: SignedInAdminDep) -> IngestReport:
    """Index the knowledge folder and every upload again (only what changed is re-embedded)."""
    return uploads.reindex(session, indexing)
