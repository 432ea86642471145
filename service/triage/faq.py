"""Curated FAQ answers: a question close enough to an FAQ entry's question gets that entry's answer as written."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.retrieval.documents import Document, load_documents
from service.retrieval.embeddings import Embedder, QueryVectorCache, Vectors
from service.retrieval.schemas import Hit

_QUESTION_HEADING = re.compile(r"^#{1,6}\s*(Q[:：]|質問[:：]?)\s*", re.MULTILINE)


@dataclass(frozen=True)
class FaqEntry:
    doc_id: str  # faq-job-01-ja
    base_id: str  # faq-job-01: the same entry in every language
    lang: str
    question: str
    answer: str
    alternates: tuple[str, ...] = ()  # other ways staff ask it (front matter `questions`)


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    similarity: float


@dataclass(frozen=True)
class FaqResult:
    """The best entry (in the asker's language when it exists) and the close runners-up."""

    best: FaqMatch | None
    runners_up: list[FaqMatch]

    @property
    def similarity(self) -> float:
        return self.best.similarity if self.best else 0.0

    @property
    def margin(self) -> float:
        """How far the best entry is ahead of the next one."""
        if self.best is None:
            return 0.0
        return self.best.similarity - (self.runners_up[0].similarity if self.runners_up else 0.0)


def base_id(doc_id: str) -> str:
    return re.sub(r"-(ja|en)$", "", doc_id)


def answer_text(body: str) -> str:
    """The body without its "## Q: ..." heading: the curated answer as the project office wrote it."""
    lines = [line for line in body.strip().splitlines() if not _QUESTION_HEADING.match(line)]
    return "\n".join(lines).strip()


def load_faq(knowledge_dir: Path) -> list[FaqEntry]:
    """Every document of type faq under knowledge_dir."""
    return faq_entries(load_documents(knowledge_dir).documents) if knowledge_dir.is_dir() else []


def faq_entries(documents: Sequence[Document]) -> list[FaqEntry]:
    """The documents of type faq as entries."""
    return [
        FaqEntry(d.doc_id, base_id(d.doc_id), d.meta.lang, d.meta.title, answer_text(d.body), tuple(d.meta.questions))
        for d in documents
        if d.meta.type == "faq"
    ]


class FaqIndex:
    """The FAQ entries' questions and their alternates, embedded like a question (synonym-expanded, e5 "query:"),
    held in memory.

    44 entries × 2 languages × a few phrasings fit in one small matrix; a match is one matrix product, and an entry
    scores its closest phrasing. Both languages are compared, and the answer is given in the asker's language when
    the entry has it."""

    def __init__(
        self,
        entries: list[FaqEntry],
        embedder: Embedder,
        *,
        expand: Callable[[str], str] = str,
        cache_dir: Path | None = None,
    ) -> None:
        self.entries = entries
        self._expand = expand
        self._embedder = embedder
        phrasings = [(e.base_id, q) for e in entries for q in dict.fromkeys((e.question, *e.alternates))]
        self._owners = [base for base, _ in phrasings]
        titles = {e.question for e in entries}
        self._is_title = np.array([q in titles for _, q in phrasings], dtype=bool)
        self._matrix = self._embed([expand(q) for _, q in phrasings], cache_dir)

    def _embed(self, texts: list[str], cache_dir: Path | None) -> Vectors:
        if not texts:
            return np.zeros((0, 1), np.float32)
        return QueryVectorCache(self._embedder, cache_dir).get(texts)

    def similarities(self, vector: Vectors) -> dict[str, float]:
        """The best similarity of each entry (over its languages) to a question's expanded query vector."""
        if not self.entries:
            return {}
        scores = self._matrix @ vector.reshape(-1)
        best: dict[str, float] = {}
        for base, score in zip(self._owners, scores, strict=True):
            best[base] = max(best.get(base, -1.0), float(score))
        return best

    def closest_document(self, vector: Vectors, *, lang: str) -> tuple[str, float] | None:
        """The entry closest to a question (by its title and other phrasings) as a document in lang where it
        exists, with that similarity: the search's question keys (service.retrieval.service.QuestionKeys)."""
        scores = self.similarities(vector)
        if not scores:
            return None
        base, similarity = max(scores.items(), key=lambda item: item[1])
        return self.entry(base, lang).doc_id, similarity

    def title_similarity(self, vector: Vectors) -> float:
        """The best similarity to an entry's own question (its title), without the alternates: what the scope gate
        weighs, as it was tuned on (the casual alternates sit closer to everyday off-topic questions)."""
        if not self.entries:
            return 0.0
        return float((self._matrix[self._is_title] @ vector.reshape(-1)).max())

    def match(self, vector: Vectors, *, lang: str, related: int = 3) -> FaqResult:
        """The closest entries, best first, each in the asker's language where possible."""
        ranked = sorted(self.similarities(vector).items(), key=lambda item: -item[1])
        matches = [FaqMatch(self.entry(bid, lang), score) for bid, score in ranked[: related + 1]]
        return FaqResult(matches[0] if matches else None, matches[1:])

    def entry(self, base: str, lang: str) -> FaqEntry:
        """An entry in lang, or in whatever language it exists."""
        candidates = [e for e in self.entries if e.base_id == base]
        return next((e for e in candidates if e.lang == lang), candidates[0])


def retrieval_lead(hits: Sequence[Hit], base: str) -> float:
    """How far the passage search's top document is ahead of the next document, when that top document is the FAQ
    entry base (either language); 0 when the search put something else first. Scores are the fused ones."""
    if not hits or base_id(hits[0].doc_id) != base:
        return 0.0
    # The best other score, not the next one: a question key may have placed a lower-scored entry third.
    runner_up = max((h.score for h in hits[1:] if base_id(h.doc_id) != base), default=0.0)
    return hits[0].score - runner_up


@dataclass(frozen=True)
class FaqPolicy:
    """When a match is confident enough to answer, and which runners-up are offered as related questions.

    Two ways to answer: the question is very close to the best entry's question (min_similarity, min_margin); or the
    hybrid passage search, which also reads the answer text, puts an FAQ entry first, clearly ahead of any other
    document (agree_min_lead), that is also among the closest entries by question (agree_min_similarity), for a
    question the scope gate keeps in scope. The question match alone picks the right entry for ~22 of 30 dev
    questions; the two agreeing are right far more often."""

    # The thresholds come from Settings (faq_policy in service/triage/service.py builds the policy the service uses):
    # one place to tune them, documented there.
    min_similarity: float
    min_margin: float  # how far ahead of the runner-up the best entry must be
    agree_min_similarity: float
    agree_min_lead: float
    # A question the scope gate calls out of scope ("how do I change my salary account?" is close to the salary
    # entry) is answered from the FAQ only when it is about as close as a rewording of the entry's own question.
    out_of_scope_min: float
    related_within: float = 0.03  # runners-up this close to the best are offered (もしかして)
    related_min: float = 0.85  # and never below this

    def confident(self, result: FaqResult) -> bool:
        """Sure from the question match alone."""
        return result.best is not None and result.similarity >= self.min_similarity and result.margin >= self.min_margin

    def choose(self, result: FaqResult, *, hits: Sequence[Hit] = (), in_scope: bool = True) -> FaqMatch | None:
        """The entry to answer with, or None: the confident best match, else the search's top FAQ entry when it is
        one of the close matches and the search is sure of it."""
        if result.best is None:
            return None
        if self.confident(result) and (in_scope or result.similarity >= self.out_of_scope_min):
            return result.best
        if not in_scope or not hits:
            return None
        top = base_id(hits[0].doc_id)
        match = next((m for m in [result.best, *result.runners_up] if m.entry.base_id == top), None)
        if match and match.similarity >= self.agree_min_similarity and retrieval_lead(hits, top) >= self.agree_min_lead:
            return match
        return None

    def related(self, result: FaqResult, *, include_best: bool, answered: FaqMatch | None = None) -> list[FaqMatch]:
        """The entries worth offering: the runners-up close to the best (and the best itself when not answered).

        answered, when the answer is a runner-up the search chose, is left out and the best is offered instead."""
        if result.best is None:
            return []
        if answered is not None and answered.entry.base_id != result.best.entry.base_id:
            include_best = True
        pool = ([result.best] if include_best else []) + result.runners_up
        top = result.similarity
        return [
            m
            for m in pool
            if m.similarity >= self.related_min
            and top - m.similarity <= self.related_within
            and (answered is None or m.entry.base_id != answered.entry.base_id)
        ]
