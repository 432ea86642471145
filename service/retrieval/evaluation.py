"""Retrieval quality on a labelled question set: recall@k and MRR by method, language and split."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel

from service.retrieval.service import KnowledgeIndex, SearchOptions, search_passages


class RetrievalCase(BaseModel):
    id: str
    lang: str
    question: str
    doc_ids: list[str]
    split: str = "dev"
    note: str = ""
    search_lang: str | None = None  # search only documents in this language (an English question on Japanese text)


class RetrievalScores(BaseModel):
    method: str
    n: int
    recall_at_1: float
    recall_at_3: float
    recall_at_5: float
    mrr: float
    misses_at_3: list[str]


def load_cases(path: Path) -> list[RetrievalCase]:
    """Cases from a JSONL file, one per line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [RetrievalCase.model_validate(json.loads(line)) for line in lines if line.strip()]


def first_relevant_rank(doc_ids: Iterable[str], gold: set[str]) -> int | None:
    """1-based rank of the first hit whose document answers the question."""
    return next((rank for rank, doc_id in enumerate(doc_ids, 1) if doc_id in gold), None)


def rank_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@1/3/5 and MRR from each question's first relevant rank (None: not in the results)."""
    n = len(ranks)
    if not n:
        return {"recall_at_1": 0.0, "recall_at_3": 0.0, "recall_at_5": 0.0, "mrr": 0.0}
    found = [r for r in ranks if r is not None]
    return {
        "recall_at_1": sum(r <= 1 for r in found) / n,
        "recall_at_3": sum(r <= 3 for r in found) / n,
        "recall_at_5": sum(r <= 5 for r in found) / n,
        "mrr": sum(1 / r for r in found) / n,
    }


def score_retrieval(
    index: KnowledgeIndex, cases: list[RetrievalCase], *, method: str, k: int = 5, options: SearchOptions | None = None
) -> RetrievalScores:
    """Run every case through search_passages and aggregate."""
    ranks: list[int | None] = []
    misses: list[str] = []
    for case in cases:
        hits = search_passages(index, query=case.question, k=k, method=method, options=options, lang=case.search_lang)
        rank = first_relevant_rank([h.doc_id for h in hits], set(case.doc_ids))
        ranks.append(rank)
        if rank is None or rank > 3:
            misses.append(case.id)
    return RetrievalScores(method=method, n=len(cases), **rank_metrics(ranks), misses_at_3=misses)


_HEADING_LINE = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def chunk_headings(text: str) -> set[str]:
    """The headings a chunk holds: every chunk of a section starts with its heading, merged sections keep theirs."""
    return set(_HEADING_LINE.findall(text))


def first_section_rank(chunk_texts: Iterable[str], sections: set[str]) -> int | None:
    """1-based rank of the first chunk that holds one of the sections answering the question."""
    return next((rank for rank, text in enumerate(chunk_texts, 1) if chunk_headings(text) & sections), None)
