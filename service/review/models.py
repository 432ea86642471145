"""Review rows: the queue, the audit log, idempotent decisions, question vectors."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, StrEnumType, UTCDateTime, utcnow


class ReviewStatus(StrEnum):
    """Where an item stands: waiting for a decision, or decided."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


STATUSES = tuple(ReviewStatus)


class ReviewItem(Base):
    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), unique=True)
    status: Mapped[ReviewStatus] = mapped_column(StrEnumType(ReviewStatus), default=ReviewStatus.pending, index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")  # high when flagged or abstained
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Added by 0004: who holds the item, what a reviewer decided, and the label they corrected.
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    root_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)  # a reviewer's relabel, else None
    final_answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # the approved text (edited or as drafted)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it was rejected or withdrawn
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)  # the public word to the asker on a rejection
    answered_by: Mapped[int | None] = mapped_column(  # approved with a near-duplicate's decision
        ForeignKey("review_items.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # Added by 0010: reused for similar questions (the approved-answer store and its /kb page) or, for a reply
    # to one asker (an abstained question), only shown to that asker.
    reuse: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Added by 0016: a reviewer's word on whether the comment objects or only asks; None keeps the classifier's flag.
    is_objection: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class ReviewEvent(Base):
    """The append-only audit log: every decision attempt on an item, applied or refused."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))  # approve | edit | reject | withdraw | relabel | assign
    outcome: Mapped[str] = mapped_column(String(16))  # applied | conflict
    version: Mapped[int] = mapped_column(Integer)  # the version the decision was made on
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. "with #12's group decision"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotentDecision(Base):
    """A decision's result kept under the client's Idempotency-Key, so a retry replays it instead of redoing it."""

    __tablename__ = "review_idempotency"

    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuestionVector(Base):
    """A question's embedding, kept so grouping near-duplicates does not embed the whole queue on every request."""

    __tablename__ = "question_vectors"

    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True)
    embedder: Mapped[str] = mapped_column(String(200))
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class AnswerReuse(Base):
    """A new question answered with an approved answer (0013): logged against the approved item instead of becoming
    another pending item."""

    __tablename__ = "answer_reuse_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
