"""SQL for the review queue: listing rows, compare-and-set versions, the audit log, idempotency records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.review.models import AnswerReuse, IdempotentDecision, ReviewEvent, ReviewItem
from service.review.schemas import ItemQuery
from service.triage.models import Answer, ClassificationRow, Feedback, Question

# Listing and grouping read at most this many items (newest first); a busier queue needs narrower filters.
MAX_ROWS = 5000


@dataclass(frozen=True)
class QueueRow:
    """One review item with what the queue shows about it."""

    item: ReviewItem
    question: Question
    mode: str | None
    flags: list[str]
    classifier_root_cause: str | None
    confidence: float | None

    @property
    def root_cause(self) -> str | None:
        return self.item.root_cause or self.classifier_root_cause


def effective_root_cause() -> ColumnElement[Any]:
    """The reviewer's label when an item was relabelled, else the classifier's (for filters and reports)."""
    return func.coalesce(ReviewItem.root_cause, ClassificationRow.primary)


def effective_is_objection() -> ColumnElement[Any]:
    """The reviewer's word on whether the comment objects or only asks, else the classifier's flag."""
    return func.coalesce(ReviewItem.is_objection, ClassificationRow.is_objection)


def _start_of(day: Any) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _conditions(query: ItemQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.status:
        conditions.append(ReviewItem.status.in_(query.status))
    if query.root_cause:
        conditions.append(effective_root_cause().in_(query.root_cause))
    if query.min_confidence is not None:
        conditions.append(ClassificationRow.confidence >= query.min_confidence)
    if query.max_confidence is not None:
        conditions.append(ClassificationRow.confidence <= query.max_confidence)
    if query.source:
        conditions.append(Question.source.in_(query.source))
    if query.department:
        conditions.append(Question.department.in_(query.department))
    if query.mode:
        conditions.append(Answer.mode.in_(query.mode))
    if query.assignee:
        conditions.append(ReviewItem.assignee == query.assignee)
    if query.since:
        conditions.append(Question.created_at >= _start_of(query.since))
    if query.until:
        conditions.append(Question.created_at < _start_of(query.until) + timedelta(days=1))
    return conditions


def queue_rows(session: Session, query: ItemQuery, *, only_ids: list[int] | None = None) -> list[QueueRow]:
    """Items matching the filters, in the order they were asked (oldest first)."""
    stmt = (
        select(ReviewItem, Question, Answer.mode, Answer.flags, ClassificationRow.primary, ClassificationRow.confidence)
        .join(Question, Question.id == ReviewItem.question_id)
        .outerjoin(Answer, Answer.question_id == Question.id)
        .outerjoin(ClassificationRow, ClassificationRow.question_id == Question.id)
        .where(*_conditions(query))
        .order_by(Question.created_at.desc(), ReviewItem.id.desc())
        .limit(MAX_ROWS)
    )
    if only_ids is not None:
        stmt = stmt.where(ReviewItem.id.in_(only_ids))
    rows = [
        QueueRow(item, question, mode, list(flags or []), primary, confidence)
        for item, question, mode, flags, primary, confidence in session.execute(stmt)
    ]
    rows.reverse()
    return rows


def get_item(session: Session, item_id: int) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"no review item {item_id}", detail={"id": item_id})
    return item


def reload(session: Session, item: ReviewItem) -> ReviewItem:
    """The item as committed now (another reviewer may have changed it since it was read)."""
    session.refresh(item)
    return item


def claim(session: Session, *, item_id: int, version: int, actor: str, at: datetime) -> bool:
    """Compare-and-set: bump the version only if it is still `version`. The UPDATE takes the row (PostgreSQL) or
    database (SQLite) write lock, so of two concurrent decisions on one version exactly one succeeds."""
    stmt = (
        update(ReviewItem)
        .where(ReviewItem.id == item_id, ReviewItem.version == version)
        .values(version=version + 1, updated_by=actor, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def add_event(session: Session, **values: Any) -> ReviewEvent:
    event = ReviewEvent(**values)
    session.add(event)
    session.flush()
    return event


def events(session: Session, item_id: int) -> list[ReviewEvent]:
    stmt = select(ReviewEvent).where(ReviewEvent.item_id == item_id).order_by(ReviewEvent.id)
    return list(session.scalars(stmt))


def feedback(session: Session, question_id: int) -> list[Feedback]:
    stmt = select(Feedback).where(Feedback.question_id == question_id).order_by(Feedback.created_at, Feedback.id)
    return list(session.scalars(stmt))


def answer_of(session: Session, question_id: int) -> Answer | None:
    return session.scalars(select(Answer).where(Answer.question_id == question_id)).one_or_none()


def classification_of(session: Session, question_id: int) -> ClassificationRow | None:
    return session.scalars(select(ClassificationRow).where(ClassificationRow.question_id == question_id)).one_or_none()


def attached_members(session: Session, item_id: int) -> list[ReviewItem]:
    """Approved items that were answered by this item's decision (they follow it when it is edited or withdrawn)."""
    stmt = select(ReviewItem).where(ReviewItem.answered_by == item_id, ReviewItem.status == "approved")
    return list(session.scalars(stmt.order_by(ReviewItem.id)))


def reuse_count(session: Session, item_id: int) -> int:
    """How many new questions were answered with this item's approved answer or its group members'."""
    group = select(ReviewItem.id).where(or_(ReviewItem.id == item_id, ReviewItem.answered_by == item_id))
    stmt = select(func.count()).select_from(AnswerReuse).where(AnswerReuse.item_id.in_(group))
    return int(session.scalar(stmt) or 0)


def idempotent(session: Session, *, actor: str, key: str) -> IdempotentDecision | None:
    return session.get(IdempotentDecision, (actor, key))


def save_idempotent(session: Session, **values: Any) -> None:
    session.add(IdempotentDecision(**values))
    session.flush()


def day_counts(session: Session, *, since: datetime) -> dict[str, int]:
    """What the daily digest reports: questions since then (of those abstained, and flagged drafts), approvals
    since then, and items waiting for a decision now."""
    asked = (
        select(Answer.mode, ReviewItem.priority)
        .join(Question, Question.id == Answer.question_id)
        .outerjoin(ReviewItem, ReviewItem.question_id == Question.id)
        .where(Question.created_at >= since)
    )
    rows = session.execute(asked).all()
    approved = select(func.count()).where(ReviewItem.status == "approved", ReviewItem.decided_at >= since)
    waiting = select(func.count()).where(ReviewItem.status == "pending")
    return {
        "questions": len(rows),
        "abstained": sum(1 for mode, _ in rows if mode == "abstain"),
        "flagged": sum(1 for mode, priority in rows if mode != "abstain" and priority == "high"),
        "approved": int(session.scalar(approved.select_from(ReviewItem)) or 0),
        "waiting": int(session.scalar(waiting.select_from(ReviewItem)) or 0),
    }


def relabel_version(session: Session) -> int:
    """The classifier version the database holds: the id of the latest applied relabel (0 before any)."""
    stmt = select(func.max(ReviewEvent.id)).where(ReviewEvent.action == "relabel", ReviewEvent.outcome == "applied")
    return int(session.scalar(stmt) or 0)


def relabel_examples(session: Session) -> list[tuple[str, str]]:
    """(question, label) for every item a reviewer relabelled, oldest first."""
    stmt = (
        select(Question.text, ReviewItem.root_cause)
        .join(Question, Question.id == ReviewItem.question_id)
        .where(ReviewItem.root_cause.is_not(None))
        .order_by(ReviewItem.id)
    )
    return [(text, label) for text, label in session.execute(stmt) if label]


def approved_items(session: Session) -> list[ReviewItem]:
    """Every approved item with an answer, its own or its group's: what /v1/ask may reuse."""
    stmt = select(ReviewItem).where(ReviewItem.status == "approved", ReviewItem.final_answer.is_not(None))
    return list(session.scalars(stmt.order_by(ReviewItem.id)))


def approved_primaries(session: Session) -> list[tuple[ReviewItem, Question, ClassificationRow | None, Answer | None]]:
    """Approved items that carry their own answer (not those approved with a near-duplicate's decision)."""
    stmt = (
        select(ReviewItem, Question, ClassificationRow, Answer)
        .join(Question, Question.id == ReviewItem.question_id)
        .outerjoin(ClassificationRow, ClassificationRow.question_id == Question.id)
        .outerjoin(Answer, Answer.question_id == Question.id)
        .where(ReviewItem.status == "approved", ReviewItem.answered_by.is_(None), ReviewItem.reuse.is_(True))
        .order_by(ReviewItem.id)
    )
    return [(item, question, label, answer) for item, question, label, answer in session.execute(stmt)]
