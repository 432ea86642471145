"""Where the pipeline hands its results: a review queue, reached through this protocol so triage never imports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ServedAnswer:
    """An approved answer as the database says it is now: its text and the citations its [n] refer to."""

    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)


class ReviewQueue(Protocol):
    """Puts a stored question (with its draft and classification) in front of reviewers, in the caller's
    transaction. The wiring code hands one in (the review domain's SqlReviewQueue)."""

    def enqueue(
        self,
        session: Session,
        *,
        question_id: int,
        urgent: bool,
        vector: np.ndarray | None = None,
        embedder: str | None = None,
    ) -> object: ...

    def approved_answer(self, session: Session, answer_id: str) -> ServedAnswer | None:
        """The answer to serve for an approved answer the vector store matched, as the database says it is now;
        None when it is no longer approved (the database is the truth, the store may lag behind)."""
        ...

    def record_reuse(self, session: Session, *, answer_id: str, question_id: int) -> None:
        """Log that a new question was answered with an approved answer (instead of a new review item)."""
        ...
