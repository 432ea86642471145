"""Hybrid search: dense (Chroma) and BM25 candidates, fused by weighted scores or reciprocal rank fusion."""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import groupby
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import BadInput, NotFound
from service.retrieval import repository
from service.retrieval.documents import detect_lang
from service.retrieval.embeddings import Vectors
from service.retrieval.ingest import embedder_input
from service.retrieval.lexical import LexicalIndex, Synonyms
from service.retrieval.models import KNOWLEDGE, KbDocument
from service.retrieval.passages import citation_url
from service.retrieval.schemas import Hit
from service.retrieval.store import ChunkStore, StoredChunk
from service.tokens import truncate_tokens


@dataclass(frozen=True)
class SearchOptions:
    """How candidates are gathered and fused (see Settings)."""

    candidates: int = 50
    fusion: Literal["weighted", "rrf"] = "weighted"
    dense_weight: float = 0.6
    rrf_k: int = 60

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchOptions:
        return cls(settings.candidates, settings.fusion, settings.dense_weight, settings.rrf_k)


class QuestionKeys(Protocol):
    """Curated questions that name the document answering them (the FAQ entries' titles and other phrasings)."""

    def closest_document(self, vector: Vectors, *, lang: str) -> tuple[str, float] | None:
        """The document whose question is closest to a query's expanded vector, in lang where it exists, with that
        similarity; None when there are no questions."""
        ...


# A document whose curated question is this close to the query is given at least the third place of a search. A
# question a staff member asks in their own words can be far from the answer's text and still close to one of the
# ways the project office wrote it; the first two places stay the search's own. Dev split: recall@3 0.938 -> 0.954
# (one question gained, none lost); at 0.88, two gained and one lost.
KEY_MIN_SIMILARITY = 0.90
KEY_PLACE = 3


@dataclass
class KnowledgeIndex:
    """The vector store plus the in-memory lexical index and chunk lookup built from it."""

    store: ChunkStore
    synonyms: Synonyms = field(default_factory=lambda: Synonyms([]))
    chunks: dict[str, StoredChunk] = field(default_factory=dict)
    lexical: LexicalIndex = field(default_factory=lambda: LexicalIndex([], []))
    # Per chunk, in lexical.chunk_ids order: its language, and whether its document has no version in another one.
    langs: npt.NDArray[np.str_] = field(default_factory=lambda: np.array([], dtype=str))
    alone: npt.NDArray[np.bool_] = field(default_factory=lambda: np.array([], dtype=bool))
    max_query_tokens: int = 512  # a query is cut to this before it is embedded (Settings.max_embed_tokens)

    def __post_init__(self) -> None:
        # Not fields: FastAPI and pydantic (the LangChain components) look at this class's fields.
        self._swap = threading.Lock()
        self.question_keys: QuestionKeys | None = None  # set with the FAQ index (service/triage/answering.py)

    def refresh(self) -> None:
        """Reload chunks from the vector store and rebuild BM25 (after ingestion). Built aside and swapped in at once,
        so a search running meanwhile reads the old index or the new one, never half of each (see keyword_view)."""
        stored = self.store.all_chunks()
        lexical = LexicalIndex([c.chunk_id for c in stored], [_lexical_text(c) for c in stored])
        doc_ids = {c.meta["doc_id"] for c in stored}
        langs = np.array([c.meta.get("lang", "") for c in stored], dtype=str)
        alone = np.array([counterpart_id(c.meta["doc_id"]) not in doc_ids for c in stored], dtype=bool)
        chunks = {c.chunk_id: c for c in stored}
        with self._swap:
            self.chunks, self.lexical, self.langs, self.alone = chunks, lexical, langs, alone

    def keyword_view(self) -> tuple[dict[str, StoredChunk], LexicalIndex, npt.NDArray[np.str_], npt.NDArray[np.bool_]]:
        """chunks, lexical, langs and alone of one refresh."""
        with self._swap:
            return self.chunks, self.lexical, self.langs, self.alone

    @property
    def loaded(self) -> bool:
        return bool(self.chunks)


def _lexical_text(chunk: StoredChunk) -> str:
    """What keyword search reads of a chunk: what the embedder read."""
    return embedder_input(chunk.meta.get("title", ""), chunk.meta.get("context", ""), chunk.text)


def clean_query(query: str, *, max_chars: int) -> str:
    """The query stripped, or BadInput saying what to fix."""
    text = query.strip()
    if not text:
        raise BadInput("query is empty: type a question or objection")
    if len(text) > max_chars:
        raise BadInput(
            f"query is {len(text):,} characters; the limit is {max_chars:,}. "
            "Shorten it or split it into several questions",
            detail={"length": len(text), "limit": max_chars},
        )
    return text


def _where(types: list[str] | None, lang: str | None) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if types:
        clauses.append({"type": {"$in": list(types)}})
    if lang:
        clauses.append({"lang": lang})
    if len(clauses) > 1:
        return {"$and": clauses}
    return clauses[0] if clauses else None


def _lexical_candidates(
    index: KnowledgeIndex, query: str, *, n: int, types: list[str] | None, lang: str | None, asked: str = ""
) -> list[tuple[str, float]]:
    """BM25 candidates for the expanded query; asked, the question as typed, lets the translations reach a chunk in
    another language whose document has no version in the question's language (or whose other version the language
    filter leaves out)."""
    chunks, lexical, langs, alone = index.keyword_view()
    scores = lexical.scores(query)
    ids = lexical.chunk_ids
    other = (langs != detect_lang(query)) & (alone | (lang is not None)) if asked else None
    if other is not None and other.any():
        translated = expanded_query(index, asked, across_languages=True)
        if translated != query:
            scores = np.where(other, lexical.scores(translated), scores)
    if types or lang:
        metas = [chunks[c].meta for c in ids]
        keep = np.array(
            [(not types or m.get("type") in types) and (not lang or m.get("lang") == lang) for m in metas], dtype=bool
        )
        scores = np.where(keep, scores, 0.0)
    return [(ids[i], float(scores[i])) for i in top_positive(scores, n)]


def top_positive(scores: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.intp]:
    """The indices of the n highest positive scores, best first, ties in index order: what a stable sort of every
    score would give, without sorting all of them (10,000 chunks: only the candidates near the top are sorted)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > n:
        cut = np.partition(scores[positive], len(positive) - n)[len(positive) - n]  # the n-th highest score
        positive = positive[scores[positive] >= cut]  # ties at the cut all kept: the stable sort decides among them
    return positive[np.argsort(-scores[positive], kind="stable")][:n]


def rrf(rankings: list[list[str]], *, k: int) -> dict[str, float]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the items it ranks."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def _min_max(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    return {item: (score - low) / (high - low) if high > low else 1.0 for item, score in scores.items()}


def weighted_fusion(dense: dict[str, float], lexical: dict[str, float], *, dense_weight: float) -> dict[str, float]:
    """Convex combination of min-max normalised candidate scores; an item one method missed gets 0 there."""
    dense_n, lexical_n = _min_max(dense), _min_max(lexical)
    return {
        item: dense_weight * dense_n.get(item, 0.0) + (1 - dense_weight) * lexical_n.get(item, 0.0)
        for item in dense_n.keys() | lexical_n.keys()
    }


def search_passages(
    index: KnowledgeIndex,
    *,
    query: str,
    k: int,
    types: list[str] | None = None,
    lang: str | None = None,
    options: SearchOptions | None = None,
    method: str = "hybrid",
    query_vector: Vectors | None = None,
    expanded: str | None = None,
    dense_hits: list[tuple[str, float]] | None = None,
) -> list[Hit]:
    """The k passages that best answer query; method is hybrid, dense or lexical.

    query_vector, when the caller already embedded the expanded query (see expanded_query), saves an embedding;
    expanded, the expanded query when the caller has it; dense_hits, the dense candidates when the caller already
    asked the store for them (see dense_candidates_many: a batch of queries in one call, same types and lang).
    """
    options = options or SearchOptions()
    if not index.loaded:
        index.refresh()
    expanded = expanded if expanded is not None else expanded_query(index, query)
    dense: dict[str, float] = {}
    lexical: dict[str, float] = {}
    vector = query_vector
    if method in ("hybrid", "dense"):
        if dense_hits is None:
            vector = vector if vector is not None else index.store.embedder.embed_query(expanded)
            dense_hits = dense_candidates_many(index, [vector], types=types, lang=lang, options=options)[0]
        dense = dict(dense_hits)
        if any(c not in index.chunks for c in dense):  # another process indexed an upload since this one loaded
            index.refresh()
            dense = {c: score for c, score in dense.items() if c in index.chunks}
    if method in ("hybrid", "lexical"):
        lexical = dict(_lexical_candidates(index, expanded, n=options.candidates, types=types, lang=lang, asked=query))
    if options.fusion == "rrf":
        by_score = [sorted(dense, key=lambda c: -dense[c]), sorted(lexical, key=lambda c: -lexical[c])]
        fused = rrf(by_score, k=options.rrf_k)
    else:
        fused = weighted_fusion(dense, lexical, dense_weight=options.dense_weight)
    chunks = index.chunks  # a refresh by another thread swaps it whole: an id it no longer has is left out
    ranked = [c for c in sorted(fused, key=lambda c: (-fused[c], -dense.get(c, -1.0), c)) if c in chunks][:k]
    if vector is not None and index.question_keys is not None and (types is None or "faq" in types):
        ranked = _keyed(ranked, index.question_keys, vector, chunks, lang=lang, asked=detect_lang(query), k=k)
    return [_hit(chunks[c], rank, fused.get(c, 0.0), dense.get(c), lexical.get(c)) for rank, c in enumerate(ranked, 1)]


def _keyed(
    ranked: list[str],
    keys: QuestionKeys,
    vector: Vectors,
    chunks: dict[str, StoredChunk],
    *,
    lang: str | None,
    asked: str,
    k: int,
) -> list[str]:
    """ranked with the document of the closest curated question among the first KEY_PLACE, when it is close enough
    (its first chunk: an FAQ entry is one chunk): in the language searched (lang), else the one asked in."""
    found = keys.closest_document(vector, lang=lang or asked)
    if found is None or found[1] < KEY_MIN_SIMILARITY or (chunk_id := f"{found[0]}#0") not in chunks:
        return ranked
    if lang and chunks[chunk_id].meta.get("lang") != lang:  # the entry has no version in the language searched
        return ranked
    if any(chunks[c].meta.get("doc_id") == found[0] for c in ranked[:KEY_PLACE]):
        return ranked
    rest = [c for c in ranked if c != chunk_id]
    return [*rest[: KEY_PLACE - 1], chunk_id, *rest[KEY_PLACE - 1 :]][:k]


def dense_candidates_many(
    index: KnowledgeIndex,
    vectors: list[Vectors] | Vectors,
    *,
    types: list[str] | None = None,
    lang: str | None = None,
    options: SearchOptions | None = None,
) -> list[list[tuple[str, float]]]:
    """The dense candidates of each query vector (chunk id, cosine similarity; best first), in one store call:
    what search_passages takes as dense_hits."""
    options = options or SearchOptions()
    if not index.loaded:
        index.refresh()
    n = min(options.candidates, max(len(index.chunks), 1))
    return index.store.query_many(vectors, n=n, where=_where(types, lang))


def expanded_query(index: KnowledgeIndex, query: str, *, across_languages: bool = False) -> str:
    """The query, cut to the index's token cap so no caller can make the embedder work for seconds, with its
    synonyms: slang like クビ then reaches 解雇 in the documents (both methods use it). Keyword search also adds the
    translations (across_languages): an English question then reaches a Japanese-only document's words."""
    return index.synonyms.expand(truncate_tokens(query, index.max_query_tokens), across_languages=across_languages)


def _hit(chunk: StoredChunk, rank: int, score: float, dense: float | None, lexical: float | None) -> Hit:
    meta = chunk.meta
    return Hit(
        rank=rank,
        doc_id=meta["doc_id"],
        chunk_id=chunk.chunk_id,
        title=meta.get("title", ""),
        type=meta.get("type", "doc"),
        lang=meta.get("lang", ""),
        section=meta.get("section", ""),
        score=round(score, 6),
        dense_score=None if dense is None else round(dense, 4),
        lexical_score=None if lexical is None else round(lexical, 4),
        text=chunk.text,
        url=citation_url(meta["doc_id"], chunk.chunk_id),
    )


def get_kb_document(session: Session, *, doc_id: str) -> KbDocument:
    """One indexed document, or NotFound naming it."""
    doc = repository.get_document(session, doc_id)
    if doc is None:
        raise NotFound(f"no document with id {doc_id!r} in the knowledge base", detail={"doc_id": doc_id})
    return doc


def counterpart_id(doc_id: str) -> str | None:
    """The id the other-language version of a document has (…-ja ↔ …-en), or None when the id names no language."""
    stem, _, lang = doc_id.rpartition("-")
    other = {"ja": "en", "en": "ja"}.get(lang)
    return f"{stem}-{other}" if stem and other else None


def translation_of(session: Session, doc: KbDocument) -> KbDocument | None:
    """The other-language version (…-ja ↔ …-en), when it exists."""
    other = counterpart_id(doc.doc_id)
    return repository.get_document(session, other) if other else None


@dataclass(frozen=True)
class KbFilter:
    """What the /kb list shows: documents whose title or text holds every word of query, of one type and language."""

    query: str = ""
    type: str = ""
    lang: str = ""

    def matches(self, doc: KbDocument) -> bool:
        if (self.type and doc.type != self.type) or (self.lang and doc.lang != self.lang):
            return False
        text = unicodedata.normalize("NFKC", f"{doc.title}\n{doc.body}").casefold()
        return all(word in text for word in unicodedata.normalize("NFKC", self.query).casefold().split())


def documents_by_type(
    session: Session, *, only: KbFilter | None = None, first_lang: str = "ja"
) -> list[tuple[str, list[KbDocument]]]:
    """The indexed documents grouped by type (plan, faq, risk, doc); in each, first_lang's before the others."""
    docs = [d for d in repository.list_documents(session) if only is None or only.matches(d)]
    return [
        (doc_type, sorted(group, key=lambda d: d.lang != first_lang))  # stable: by id within a language
        for doc_type, group in groupby(docs, key=lambda d: d.type)
    ]


@dataclass(frozen=True)
class Page:
    """A page another domain publishes at /kb/{doc_id} (e.g. an approved answer): shown, listed, never ingested."""

    doc_id: str
    origin: str  # the owning domain, e.g. "review"; never "knowledge"
    title: str
    type: str
    lang: str
    root_causes: list[str]
    updated: date | None
    body: str
    path: str  # where it comes from, for people reading the row, e.g. "review:items/12"


def put_page(session: Session, page: Page) -> KbDocument:
    """Create or replace a page another domain owns; ingesting the knowledge folder never removes it."""
    if page.origin == KNOWLEDGE:
        raise BadInput("pages from the knowledge folder are written by ingest, not put_page")
    row = session.get(KbDocument, page.doc_id) or KbDocument(doc_id=page.doc_id)
    row.title, row.type, row.lang, row.root_causes = page.title, page.type, page.lang, list(page.root_causes)
    row.updated, row.body, row.path, row.origin = page.updated, page.body, page.path, page.origin
    row.content_hash = hashlib.sha256(page.body.encode()).hexdigest()
    row.chunks, row.indexed_at = 0, datetime.now(UTC)
    repository.put_page(session, row)
    return row


def remove_page(session: Session, *, doc_id: str) -> None:
    """Remove a page put with put_page (nothing happens when there is none)."""
    repository.delete_document(session, doc_id)
