"""Where the pipeline hands its results: a review queue, reached through this protocol so triage never imports it."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session


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

    def approved_answer(self, session: Session, answer_id: str) -> str | None:
        """The text to serve for an approved answer the vector store matched, as the database says it is now;
        None when it is no longer approved (the database is the truth, the store may lag behind)."""
        ...
