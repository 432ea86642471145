"""Reviewer and admin accounts; only each token's hash is kept."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, StrEnumType, UTCDateTime, utcnow


class Role(StrEnum):
    """What a reviewer account may do: review the queue, or also manage reviewers."""

    reviewer = "reviewer"
    admin = "admin"


ROLES = tuple(Role)


class ReviewerAccount(Base):
    """A person who may review (role reviewer) or also manage reviewers (role admin); only the token's hash is kept."""

    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[Role] = mapped_column(StrEnumType(Role))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReviewSession(Base):
    """A browser signed in to the reviewer pages. Its cookie holds a random id whose hash is kept here: the cookie is
    never the bearer token, so it cannot be replayed as one, and signing out ends it on the server."""

    __tablename__ = "review_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
