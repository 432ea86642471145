"""Builders for report tests: a migrated database and questions inserted as the pipeline would store them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, make_sessionmaker, migrate
from service.retrieval.models import KbDocument
from service.review.models import ReviewItem
from service.review.service import SqlReviewQueue
from service.triage.classifier import Classification
from service.triage.models import Answer, Feedback, Question
from service.triage.service import store_for_review
from service.triage.taxonomy import Taxonomy, load_taxonomy
from tests.conftest import KNOWLEDGE

JST = timezone(timedelta(hours=9))
TOKYO = ZoneInfo("Asia/Tokyo")  # NEMAWASHI_TIMEZONE's default: the zone reports count days and weeks in


def make_sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    migrate(engine)
    return make_sessionmaker(engine)


def taxonomy() -> Taxonomy:
    return load_taxonomy(KNOWLEDGE / "taxonomy.yaml")


def jst(day: str, hour: int = 10, minute: int = 0) -> datetime:
    """A moment in Japan time, e.g. jst("2026-11-23", 0, 30)."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), JST).replace(hour=hour, minute=minute)


def citation(doc_id: str, n: int = 1, title: str | None = None) -> dict[str, Any]:
    return {
        "n": n,
        "doc_id": doc_id,
        "chunk_id": f"{doc_id}#0",
        "title": title or doc_id,
        "url": f"/kb/{doc_id}",
        "snippet": "…",
        "score": 0.9,
    }


def add_question(
    session: Session,
    text: str,
    *,
    cause: str = "job_fear",
    department: str | None = "営業部",
    at: datetime | None = None,
    mode: str = "extractive",
    cited: tuple[str, ...] = ("faq-job-01-ja",),
    objection: bool = True,
    status: str = "pending",
    source: str = "widget",
    feedback: tuple[tuple[bool, str | None], ...] = (),
) -> Question:
    """One question with its answer, label, review item and feedback, stored as the triage pipeline does."""
    citations = [] if mode == "abstain" else [citation(d, n) for n, d in enumerate(cited, 1)]
    question = store_for_review(
        session,
        Question(
            text=text,
            lang="ja",
            source=source,
            department=department,
            created_at=(at or jst("2026-11-24")).astimezone(UTC),
        ),
        Classification(cause, None, 0.8, objection, "「…」", "local"),
        answer=Answer(mode=mode, text="回答", citations=citations, flags=[], usage={}, latency_ms=5),
        queue=SqlReviewQueue(),
        urgent=False,
    )
    session.scalars(select(ReviewItem).where(ReviewItem.question_id == question.id)).one().status = status
    for helpful, comment in feedback:
        session.add(Feedback(question_id=question.id, helpful=helpful, comment=comment))
    session.flush()
    return question


def add_document(session: Session, doc_id: str, title: str, doc_type: str = "faq") -> None:
    session.add(
        KbDocument(
            doc_id=doc_id,
            title=title,
            type=doc_type,
            lang="ja",
            root_causes=[],
            updated=None,
            path=f"{doc_id}.md",
            content_hash="x",
            body="",
            chunks=1,
            indexed_at=datetime.now(UTC),
        )
    )
    session.flush()
