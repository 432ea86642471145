"""Near-duplicate questions: vectors kept in SQL, grouped so that one decision can answer a whole group."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.retrieval.embeddings import Embedder
from service.retrieval.service import KnowledgeIndex
from service.review.models import QuestionVector


@dataclass(frozen=True)
class QuestionSpace:
    """How a question becomes a vector: the pipeline's own e5 query embedding of the synonym-expanded text,
    so staff slang (クビ) groups with the plain word (解雇)."""

    embedder: Embedder
    expand: Callable[[str], str]

    @classmethod
    def of(cls, knowledge: KnowledgeIndex) -> QuestionSpace:
        return cls(knowledge.store.embedder, knowledge.synonyms.expand)

    @property
    def name(self) -> str:
        return self.embedder.name

    def embed(self, text: str) -> np.ndarray:
        vector = np.asarray(self.embedder.embed_query(self.expand(text)), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


def question_vectors(
    session: Session, space: QuestionSpace, questions: Iterable[tuple[int, str]]
) -> dict[int, np.ndarray]:
    """question id → unit vector; missing ones (or ones from another embedder) are embedded now and stored."""
    wanted = dict(questions)
    if not wanted:
        return {}
    known = QuestionVector.question_id.in_(list(wanted))
    stmt = select(QuestionVector).where(known, QuestionVector.embedder == space.name)
    found = {row.question_id: np.frombuffer(row.vector, dtype=np.float32) for row in session.scalars(stmt)}
    missing = {qid: space.embed(text) for qid, text in wanted.items() if qid not in found}
    if missing:
        _store(session, space.name, missing)
    return found | missing


def _store(session: Session, embedder: str, vectors: dict[int, np.ndarray]) -> None:
    # Two requests may embed the same new question at once: the second insert is dropped, not an error.
    rows = [
        {"question_id": qid, "embedder": embedder, "vector": v.astype(np.float32).tobytes()}
        for qid, v in vectors.items()
    ]
    dialect = session.get_bind().dialect.name
    session.execute(
        delete(QuestionVector).where(QuestionVector.question_id.in_(list(vectors)), QuestionVector.embedder != embedder)
    )
    if dialect == "postgresql":
        session.execute(postgresql.insert(QuestionVector).values(rows).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(QuestionVector).values(rows).on_conflict_do_nothing())
    else:  # other databases are not supported targets
        session.execute(insert(QuestionVector).values(rows))
    session.flush()


def cluster(vectors: list[np.ndarray], *, threshold: float) -> list[list[int]]:
    """Greedy leader clustering in the given order: each vector joins the most similar earlier leader at or above
    threshold, or leads a group of its own. Returns groups of indexes, leaders first."""
    if not vectors:
        return []
    leaders = np.zeros((len(vectors), vectors[0].shape[0]), dtype=np.float32)
    groups: list[list[int]] = []
    for index, vector in enumerate(vectors):
        if groups:
            similarities = leaders[: len(groups)] @ vector
            best = int(np.argmax(similarities))
            if similarities[best] >= threshold:
                groups[best].append(index)
                continue
        leaders[len(groups)] = vector
        groups.append([index])
    return groups


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(a @ b), 4)
