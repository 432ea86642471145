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
    version: int = 0


class ApprovedAnswers:
    """Questions with approved answers; a new question close enough to one gets that answer verbatim.

    Both sides are compared as the pipeline embeds a question: the synonym-expanded text with the e5 "query:"
    prefix, so staff slang (クビ) matches the plain word (解雇). An answer is matched through its question and every
    alternate phrasing reviewers answered with it. e5 similarity alone cannot tell a paraphrase from a near miss
    on the same topic (both reach 0.95-0.98 on the eval), so the pipeline reuses an answer only when the question
    also agrees with the phrasing it matched (service.retrieval.paraphrase): precision first."""

    def __init__(self, store: ChunkStore, expand: Callable[[str], str] = str) -> None:
        self._store = store
        self._expand = expand

    @property
    def store(self) -> ChunkStore:
        return self._store

    def publish(
        self,
        *,
        answer_id: str,
        question: str,
        answer: str,
        lang: str,
        alternates: Sequence[str] = (),
        version: int = 0,
    ) -> bool:
        """Add or replace an approved answer (idempotent by answer_id). alternates are other phrasings of the
        question that reviewers answered with it (a group decision); each is matched like the question itself.

        version is the review item's version the answer was approved at: a publication never overwrites one made
        at a newer version (two processes publishing out of order). Returns False when it was skipped so."""
        collection = self._store.open_for_writing()
        if self.version_of(answer_id) > version:
            return False
        phrasings = list(dict.fromkeys([question, *(a for a in alternates if a.strip())]))
        ids = [answer_id, *(f"{answer_id}{ALTERNATE}{n}" for n in range(1, len(phrasings)))]
        matched = [self._expand(text) for text in phrasings]
        vectors = self._store.embedder.embed_queries(matched)
        metas = [self._meta(answer_id, answer, lang, text, version) for text in matched]
        self._store.add(ids, phrasings, metas, vectors)
        # Phrasings a previous version had beyond the current ones are dropped (after the add: never none).
        stored = collection.get(where={"doc_id": answer_id}, include=[])["ids"]
        if extra := [i for i in stored if i not in ids]:
            collection.delete(ids=extra)
        return True

    @staticmethod
    def _meta(answer_id: str, answer: str, lang: str, matched: str, version: int) -> dict[str, str | int]:
        return {
            "doc_id": answer_id,
            "doc_hash": "approved",
            "answer": answer,
            "lang": lang,
            "type": "approved",
            "matched_text": matched,
            "version": version,
        }

    def version_of(self, answer_id: str) -> int:
        """The version an answer is published at; -1 when it is not published."""
        if not self._store.exists():
            return -1
        got = self._store.check_embedder().get(where={"doc_id": answer_id}, include=["metadatas"])
        return max((int(m.get("version") or 0) for m in got["metadatas"] or []), default=-1)

    def versions(self) -> dict[str, int]:
        """answer id → the review item version it was published at (0 when published without one)."""
        if not self._store.exists():
            return {}
        got = self._store.check_embedder().get(include=["metadatas"])
        found: dict[str, int] = {}
        for meta in got["metadatas"] or []:
            answer_id = str(meta.get("doc_id", ""))
            found[answer_id] = max(found.get(answer_id, 0), int(meta.get("version") or 0))
        return found

    def refresh(self) -> int:
        """Embed again the approved phrasings whose expanded text changed (synonyms.yaml was edited, or they were
        stored before expansion); returns how many."""
        if not self._store.exists():
            return 0
        stale = [c for c in self._store.all_chunks() if c.meta.get("matched_text") != self._expand(c.text)]
        if stale:
            matched = [self._expand(c.text) for c in stale]
            metas = [
                self._meta(
                    str(c.meta.get("doc_id", c.chunk_id)),
                    str(c.meta["answer"]),
                    str(c.meta["lang"]),
                    m,
                    int(c.meta.get("version") or 0),
                )
                for c, m in zip(stale, matched, strict=True)
            ]
            vectors = self._store.embedder.embed_queries(matched)
            self._store.add([c.chunk_id for c in stale], [c.text for c in stale], metas, vectors)
        return len(stale)

    def withdraw(self, answer_id: str, *, version: int | None = None) -> bool:
        """Stop reusing an answer (rejected or withdrawn). With version (the item's version at the withdrawal), an
        answer published at a newer version stays: it was approved again after this withdrawal."""
        if not self._store.exists():
            return False
        if version is not None and self.version_of(answer_id) > version:
            return False
        self._store.delete_docs([answer_id])
        return True

    def best_match(self, question: str, *, vector: Vectors | None = None) -> ApprovedAnswer | None:
        """The closest approved question, whatever its similarity; None when there are none. vector is the
        question's expanded query embedding, when the caller has it already."""
        matches = self.matches(question, vector=vector, n=1)
        return matches[0] if matches else None

    def matches(self, question: str, *, vector: Vectors | None = None, n: int = 3) -> list[ApprovedAnswer]:
        """The n closest approved answers (one per answer id, through its closest phrasing), best first."""
        answers: dict[str, ApprovedAnswer] = {}
        for phrasing in self.phrasings(question, vector=vector, n=n * 2):  # alternates of one answer may fill it
            answers.setdefault(phrasing.answer_id, phrasing)
        return list(answers.values())[:n]

    def phrasings(self, question: str, *, vector: Vectors | None = None, n: int = 6) -> list[ApprovedAnswer]:
        """The n closest approved phrasings (questions and alternates, several of one answer when they are close),
        best first; each carries its own text as question and its answer's id."""
        if not self._store.exists():
            return []
        if vector is None:
            vector = self._store.embedder.embed_query(self._expand(question))
        try:
            found = self._store.query(vector, n=n, where=None)
        except NotReady:
            return []
        if not found:
            return []
        stored = {item.chunk_id: item for item in self._store.get([phrasing_id for phrasing_id, _ in found])}
        phrasings = []
        for phrasing_id, similarity in found:
            if (item := stored.get(phrasing_id)) is None:
                continue
            meta = item.meta
            phrasings.append(
                ApprovedAnswer(
                    str(meta.get("doc_id", phrasing_id)),
                    item.text,
                    str(meta["answer"]),
                    str(meta["lang"]),
                    similarity,
                    int(meta.get("version") or 0),
                )
            )
        return phrasings
