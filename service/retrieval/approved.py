"""Reviewer-approved answers: a Chroma collection of their questions, consulted before any LLM call."""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import NotReady
from service.retrieval.store import ChunkStore


@dataclass(frozen=True)
class ApprovedAnswer:
    answer_id: str
    question: str
    answer: str
    lang: str
    similarity: float


class ApprovedAnswers:
    """Questions with approved answers; a new question close enough to one gets that answer verbatim."""

    def __init__(self, store: ChunkStore) -> None:
        self._store = store

    def publish(self, *, answer_id: str, question: str, answer: str, lang: str) -> None:
        """Add or replace an approved answer (idempotent by answer_id)."""
        self._store.open_for_writing()
        # Question-to-question matching is symmetric, so both sides get the e5 "query:" prefix.
        vector = self._store.embedder.embed_query(question).reshape(1, -1)
        meta = {"doc_id": answer_id, "doc_hash": "approved", "answer": answer, "lang": lang, "type": "approved"}
        self._store.add([answer_id], [question], [meta], vector)

    def withdraw(self, answer_id: str) -> None:
        """Stop reusing an answer (rejected or withdrawn)."""
        if self._store.exists():
            self._store.delete_docs([answer_id])

    def best_match(self, question: str) -> ApprovedAnswer | None:
        """The closest approved question, whatever its similarity; None when there are none."""
        if not self._store.exists():
            return None
        try:
            matches = self._store.query(self._store.embedder.embed_query(question), n=1, where=None)
        except NotReady:
            return None
        if not matches:
            return None
        answer_id, similarity = matches[0]
        [item] = self._store.get([answer_id])
        return ApprovedAnswer(answer_id, item.text, str(item.meta["answer"]), str(item.meta["lang"]), similarity)
