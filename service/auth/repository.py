"""SQL access for reviewer accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth.models import ReviewerAccount


def account_named(session: Session, name: str) -> ReviewerAccount | None:
    return session.scalars(select(ReviewerAccount).where(ReviewerAccount.name == name)).one_or_none()


def account_with_token(session: Session, token_hash: str) -> ReviewerAccount | None:
    return session.scalars(select(ReviewerAccount).where(ReviewerAccount.token_hash == token_hash)).one_or_none()


def accounts(session: Session) -> list[ReviewerAccount]:
    return list(session.scalars(select(ReviewerAccount).order_by(ReviewerAccount.name)))


def active_names(session: Session) -> list[str]:
    stmt = select(ReviewerAccount.name).where(ReviewerAccount.revoked_at.is_(None)).order_by(ReviewerAccount.name)
    return list(session.scalars(stmt))
