"""The outbox: one row per notification and receiver, written in the transaction of what it announces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, StrEnumType, UTCDateTime, utcnow


class Channel(StrEnum):
    """Where a row goes: the generic signed webhook, the team's Teams or Slack channel, or the asker's e-mail."""

    webhook = "webhook"
    teams = "teams"
    slack = "slack"
    email = "email"


class OutboxStatus(StrEnum):
    """pending until delivered (sent), or until it failed outbox_max_attempts times (dead: an admin may retry)."""

    pending = "pending"
    sent = "sent"
    dead = "dead"


class Kind(StrEnum):
    """What a row announces."""

    answer_updated = "answer.updated"  # a reviewer's decision changed what the asker should see
    question_abstained = "question.abstained"  # the knowledge base had no answer: the team should reply
    draft_flagged = "draft.flagged"  # a draft with a flag (invalid citation, LLM failure, ...) waits for review
    daily_digest = "digest.daily"  # the last 24 hours' counts, once a day


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[Channel] = mapped_column(StrEnumType(Channel))
    receiver: Mapped[str] = mapped_column(String(320))  # the e-mail address, or the channel name for webhooks
    kind: Mapped[Kind] = mapped_column(StrEnumType(Kind, length=32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Sent with every attempt (Idempotency-Key header, Message-ID) so a receiver drops a repeat after a crash.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(StrEnumType(OutboxStatus), default=OutboxStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the row is due; while a loop sends it, the end of that loop's lease (so no other loop takes it).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
