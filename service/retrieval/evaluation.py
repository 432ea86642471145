"""Retrieval quality on a labelled question set: recall@k and MRR by method, language and split."""

from __future__ import annotations

import json
from collections.abc import Iterable
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


def score_retrieval(
    index: KnowledgeIndex, cases: list[RetrievalCase], *, method: str, k: int = 5, options: SearchOptions | None = None
) -> RetrievalScores:
    """Run every case through search_passages and aggregate."""
    ranks: list[int | None] = []
    misses: list[str] = []
    for case in cases:
        hits = search_passages(index, query=case.question, k=k, method=method, options=options)
        rank = first_relevant_rank([h.doc_id for h in hits], set(case.doc_ids))
        ranks.append(rank)
        if rank is None or rank > 3:
            misses.append(case.id)
    n = max(len(cases), 1)
    return RetrievalScores(
        method=method,
        n=len(cases),
        recall_at_1=sum(1 for r in ranks if r and r <= 1) / n,
        recall_at_3=sum(1 for r in ranks if r and r <= 3) / n,
        recall_at_5=sum(1 for r in ranks if r and r <= 5) / n,
        mrr=sum(1 / r for r in ranks if r) / n,
        misses_at_3=misses,
    )
