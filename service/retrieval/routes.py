"""HTTP: /v1/search and the /kb source pages citations link to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from service.deps import SessionDep, SettingsDep
from service.errors import error_responses
from service.retrieval import service
from service.retrieval.deps import KnowledgeDep
from service.retrieval.passages import mark_passage, passage_text
from service.retrieval.schemas import SearchRequest, SearchResponse
from service.retrieval.service import SearchOptions
from service.web.i18n import request_lang
from service.web.pages import render_page

router = APIRouter()


@router.post(
    "/v1/search", response_model=SearchResponse, tags=["retrieval"], responses=error_responses(413, 422, 429, 503)
)
async def search(body: SearchRequest, knowledge: KnowledgeDep, settings: SettingsDep) -> SearchResponse:
    """Hybrid search over the knowledge base ("hit testing"): ranked passages with their source."""
    query = service.clean_query(body.query, max_chars=settings.max_query_chars)
    hits = await run_in_threadpool(
        service.search_passages,
        knowledge,
        query=query,
        k=body.k,
        types=list(body.types) if body.types else None,
        lang=body.lang,
        options=SearchOptions.from_settings(settings),
    )
    return SearchResponse(query=query, hits=hits)


@router.get("/kb", response_class=HTMLResponse, tags=["pages"])
def kb_index(
    request: Request,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    type: Annotated[str, Query(max_length=20)] = "",
    doc_lang: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    """The knowledge documents grouped by type, in the reader's language unless the form asks for another one (or
    all: doc_lang empty); searched and filtered by the form."""
    lang = request_lang(request)
    only = service.KbFilter(query=q.strip(), type=type, lang=lang if doc_lang is None else doc_lang)
    groups = service.documents_by_type(session, only=only, first_lang=lang)
    context = {"groups": groups, "only": only, "filtered": only != service.KbFilter(lang=lang)}
    return render_page(request, "kb_index.html", context, section="kb")


@router.get("/kb/{doc_id}", response_class=HTMLResponse, tags=["pages"], responses=error_responses(404))
def kb_document(
    request: Request,
    doc_id: str,
    session: SessionDep,
    knowledge: KnowledgeDep,
    passage: Annotated[str, Query(description="The cited chunk's number n (chunk id doc_id#n) to mark.")] = "",
) -> HTMLResponse:
    """The human-readable source page a citation links to, the cited passage (?passage=n, chunk doc_id#n) marked;
    the page's words in the reader's language. A passage it does not know just shows the page."""
    doc = service.get_kb_document(session, doc_id=doc_id)
    cited = passage_text(knowledge, doc_id=doc_id, passage=passage)
    triage = getattr(request.app.state, "triage", None)
    lang = request_lang(request)
    labels = triage.classifier.taxonomy.labels if triage is not None else []
    context = {
        "doc": doc,
        "marked": mark_passage(doc.body, cited) if cited else None,
        "translation": service.translation_of(session, doc),
        "cause_names": {label.id: getattr(label.name, lang) for label in labels},
    }
    return render_page(request, "kb_document.html", context, section="kb")
