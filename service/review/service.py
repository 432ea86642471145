"""The review queue: drafts enter as pending items (decisions come with the reviewer issue)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.review.models import ReviewItem


def enqueue(session: Session, *, question_id: int, urgent: bool) -> ReviewItem:
    """Put a stored draft in front of reviewers; flagged drafts and abstentions come first."""
    item = ReviewItem(question_id=question_id, status="pending", priority="high" if urgent else "normal", version=1)
    session.add(item)
    session.flush()
    return item
