"""SQL access for reviewer accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.auth.models import ReviewerAccount, ReviewSession


def account_named(session: Session, name: str) -> ReviewerAccount | None:
    return session.scalars(select(ReviewerAccount).where(ReviewerAccount.name == name)).one_or_none()


def account_with_token(session: Session, token_hash: str) -> ReviewerAccount | None:
    return session.scalars(select(ReviewerAccount).where(ReviewerAccount.token_hash == token_hash)).one_or_none()


def accounts(session: Session) -> list[ReviewerAccount]:
    return list(session.scalars(select(ReviewerAccount).order_by(ReviewerAccount.name)))


def active_names(session: Session) -> list[str]:
    stmt = select(ReviewerAccount.name).where(ReviewerAccount.revoked_at.is_(None)).order_by(ReviewerAccount.name)
    return list(session.scalars(stmt))


def session_with_hash(session: Session, id_hash: str) -> ReviewSession | None:
    return session.scalars(select(ReviewSession).where(ReviewSession.id_hash == id_hash)).one_or_none()


def delete_sessions(session: Session, *, id_hash: str | None = None, expired_before: datetime | None = None) -> None:
    """Delete one session (by its id's hash) or every session that expired before a moment."""
    stmt = delete(ReviewSession)
    if id_hash is not None:
        stmt = stmt.where(ReviewSession.id_hash == id_hash)
    if expired_before is not None:
        stmt = stmt.where(ReviewSession.expires_at < expired_before)
    session.execute(stmt)
