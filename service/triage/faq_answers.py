"""FAQ matches as the pipeline returns them: the curated answer's citation and the related questions."""

from __future__ import annotations

from service.retrieval.passages import citation_url
from service.retrieval.service import KnowledgeIndex
from service.triage.faq import FaqEntry, FaqMatch
from service.triage.schemas import Citation, RelatedQuestion


def faq_citation(entry: FaqEntry, knowledge: KnowledgeIndex) -> Citation:
    """The entry's /kb page as citation [1]; chunk_id is its first indexed chunk when it is indexed."""
    chunk_id = next(
        (c.chunk_id for c in knowledge.chunks.values() if c.meta.get("doc_id") == entry.doc_id), entry.doc_id
    )
    snippet = entry.answer if len(entry.answer) <= 200 else entry.answer[:199] + "…"
    return Citation(
        n=1,
        doc_id=entry.doc_id,
        chunk_id=chunk_id,
        title=entry.question,
        url=citation_url(entry.doc_id, chunk_id),
        snippet=snippet,
        score=1.0,
    )


def related_questions(matches: list[FaqMatch]) -> list[RelatedQuestion]:
    return [
        RelatedQuestion(question=m.entry.question, doc_id=m.entry.doc_id, url=f"/kb/{m.entry.doc_id}") for m in matches
    ]
