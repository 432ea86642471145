"""Reviewer-approved answers: a Chroma collection of their questions, consulted before any LLM call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.errors import NotReady
from service.retrieval.embeddings import Vectors
from service.retrieval.store import ChunkStore

ALTERNATE = "~alt"  # an alternate phrasing is stored as "<answer id>~alt<n>", with doc_id = the answer id


@dataclass(frozen=True)
class ApprovedAnswer:
    answer_id: str
    question: str
    answer: str
    lang: str
    similarity: float


class ApprovedAnswers:
    """Questions with approved answers; a new question close enough to one gets that answer verbatim.

    Both sides are compared as the pipeline embeds a question: the synonym-expanded text with the e5 "query:"
    prefix, so staff slang (クビ) matches the plain word (解雇). An answer is matched through its question and every
    alternate phrasing reviewers answered with it. e5 similarity alone cannot tell a paraphrase from a near miss
    on the same topic (both reach 0.95-0.97 on the eval), so reuse needs a high threshold: precision first."""

    def __init__(self, store: ChunkStore, expand: Callable[[str], str] = str) -> None:
        self._store = store
        self._expand = expand

    @property
    def store(self) -> ChunkStore:
        return self._store

    def publish(self, *, answer_id: str, question: str, answer: str, lang: str, alternates: Sequence[str] = ()) -> None:
        """Add or replace an approved answer (idempotent by answer_id). alternates are other phrasings of the
        question that reviewers answered with it (a group decision); each is matched like the question itself."""
        collection = self._store.open_for_writing()
        phrasings = list(dict.fromkeys([question, *(a for a in alternates if a.strip())]))
        ids = [answer_id, *(f"{answer_id}{ALTERNATE}{n}" for n in range(1, len(phrasings)))]
        matched = [self._expand(text) for text in phrasings]
        vectors = self._store.embedder.embed_queries(matched)
        metas = [self._meta(answer_id, answer, lang, text) for text in matched]
        self._store.add(ids, phrasings, metas, vectors)
        # Phrasings a previous version had beyond the current ones are dropped (after the add: never none).
        stored = collection.get(where={"doc_id": answer_id}, include=[])["ids"]
        if extra := [i for i in stored if i not in ids]:
            collection.delete(ids=extra)

    @staticmethod
    def _meta(answer_id: str, answer: str, lang: str, matched: str) -> dict[str, str]:
        return {
            "doc_id": answer_id,
            "doc_hash": "approved",
            "answer": answer,
            "lang": lang,
            "type": "approved",
            "matched_text": matched,
        }

    def refresh(self) -> int:
        """Embed again the approved phrasings whose expanded text changed (synonyms.yaml was edited, or they were
        stored before expansion); returns how many."""
        if not self._store.exists():
            return 0
        stale = [c for c in self._store.all_chunks() if c.meta.get("matched_text") != self._expand(c.text)]
        if stale:
            matched = [self._expand(c.text) for c in stale]
            metas = [
                self._meta(str(c.meta.get("doc_id", c.chunk_id)), str(c.meta["answer"]), str(c.meta["lang"]), m)
                for c, m in zip(stale, matched, strict=True)
            ]
            vectors = self._store.embedder.embed_queries(matched)
            self._store.add([c.chunk_id for c in stale], [c.text for c in stale], metas, vectors)
        return len(stale)

    def withdraw(self, answer_id: str) -> None:
        """Stop reusing an answer (rejected or withdrawn)."""
        if self._store.exists():
            self._store.delete_docs([answer_id])

    def best_match(self, question: str, *, vector: Vectors | None = None) -> ApprovedAnswer | None:
        """The closest approved question, whatever its similarity; None when there are none. vector is the
        question's expanded query embedding, when the caller has it already."""
        if not self._store.exists():
            return None
        if vector is None:
            vector = self._store.embedder.embed_query(self._expand(question))
        try:
            matches = self._store.query(vector, n=1, where=None)
        except NotReady:
            return None
        if not matches:
            return None
        phrasing_id, similarity = matches[0]
        [item] = self._store.get([phrasing_id])
        answer_id = str(item.meta.get("doc_id", phrasing_id))
        return ApprovedAnswer(answer_id, item.text, str(item.meta["answer"]), str(item.meta["lang"]), similarity)
