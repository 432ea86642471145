"""Questions with their answer, label, review status and feedback, read once per report.

Aggregation happens in Python rather than in SQL: ISO weeks in the configured time zone are spelled differently on
SQLite and PostgreSQL, and a rollout produces thousands of questions, not millions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from service.reports.schemas import ReportQuery
from service.review.models import ReviewItem
from service.review.repository import effective_is_objection, effective_root_cause
from service.triage.models import Answer, ClassificationRow, Feedback, Question, QuestionSource

NOT_SET = "不明 / unknown"  # a question asked without a department: reported as unknown, never as a target


@dataclass(frozen=True)
class FeedbackRecord:
    helpful: bool
    comment: str | None


@dataclass
class Record:
    """One question as the reports see it; text is as stored (redact before showing it)."""

    id: int
    public_id: str
    text: str
    source: str
    department: str | None
    created_at: datetime  # in the report's time zone (NEMAWASHI_TIMEZONE)
    mode: str | None
    citations: list[dict[str, Any]]
    root_cause: str | None
    is_objection: bool
    review_status: str | None
    # A person judged whether it objects: a reviewer set the stance or decided the item with the stance shown.
    # Otherwise the flag is the classifier's guess (offline: every on-topic comment counts as an objection).
    stance_checked: bool = False
    feedback: list[FeedbackRecord] = field(default_factory=list)

    @property
    def week(self) -> str:
        return iso_week(self.created_at.date())

    @property
    def abstained(self) -> bool:
        return self.mode == "abstain"

    @property
    def not_helpful(self) -> bool:
        return any(not f.helpful for f in self.feedback)

    @property
    def unanswered(self) -> bool:
        """The knowledge base did not answer it: the pipeline abstained, or the asker gave a thumbs-down."""
        return self.abstained or self.not_helpful

    def cited_doc_ids(self) -> list[str]:
        return list(dict.fromkeys(str(c["doc_id"]) for c in self.citations if isinstance(c, dict) and c.get("doc_id")))


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(week: str) -> date:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def week_start(week: str) -> str:
    """ "2026-W48" → "11/23", the week's Monday as every report names a week (with "{date}の週" / "week of {date}")."""
    monday = week_monday(week)
    return f"{monday.month}/{monday.day}"


def weeks_between(first: str, last: str) -> list[str]:
    """Every ISO week from first to last, so quiet weeks show as zero instead of disappearing."""
    monday, end = week_monday(first), week_monday(last)
    weeks = []
    while monday <= end:
        weeks.append(iso_week(monday))
        monday += timedelta(days=7)
    return weeks


def zone_label(zone: ZoneInfo) -> str:
    """The zone as reports name it, e.g. "JST, UTC+09:00" (its abbreviation and offset as of now, as the pages' times
    name it)."""
    now = datetime.now(zone)
    offset = now.strftime("%z")
    return f"{now.tzname()}, UTC{offset[:3]}:{offset[3:]}"


def day_bounds(query: ReportQuery, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """[since 00:00, until+1 00:00) in the report's zone, as UTC (SQLite stores UTC without an offset)."""
    start = datetime.combine(query.since, time(), zone).astimezone(UTC) if query.since else None
    end = datetime.combine(query.until + timedelta(days=1), time(), zone).astimezone(UTC) if query.until else None
    return start, end


def _conditions(query: ReportQuery, zone: ZoneInfo) -> list[ColumnElement[bool]]:
    start, end = day_bounds(query, zone)
    # A reviewer's added phrasing of an approved answer is not a question anyone asked.
    conditions: list[ColumnElement[bool]] = [Question.source != QuestionSource.review]
    if start is not None:
        conditions.append(Question.created_at >= start)
    if end is not None:
        conditions.append(Question.created_at < end)
    if query.source:
        conditions.append(Question.source == query.source)
    if query.department:
        conditions.append(Question.department == query.department)
    return conditions


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives back naive UTC
    return aware.astimezone(zone)


def load_records(session: Session, query: ReportQuery, zone: ZoneInfo) -> list[Record]:
    """Every question matching the filters, oldest first, with what happened to it; days, weeks and times in zone
    (NEMAWASHI_TIMEZONE)."""
    stmt = (
        select(
            Question.id,
            Question.public_id,
            Question.text,
            Question.source,
            Question.department,
            Question.created_at,
            Answer.mode,
            Answer.citations,
            effective_root_cause().label("root_cause"),
            effective_is_objection().label("is_objection"),  # a reviewer's word wins over the classifier
            ReviewItem.is_objection.label("stance_given"),
            ReviewItem.status,
        )
        .outerjoin(Answer, Answer.question_id == Question.id)
        .outerjoin(ClassificationRow, ClassificationRow.question_id == Question.id)
        .outerjoin(ReviewItem, ReviewItem.question_id == Question.id)
        .where(*_conditions(query, zone))
        .order_by(Question.created_at, Question.id)
    )
    records: dict[int, Record] = {}
    for row in session.execute(stmt):
        if row.id in records:  # defensive: should a question ever get two review items, count it once
            continue
        records[row.id] = Record(
            id=row.id,
            public_id=row.public_id,
            text=row.text,
            source=row.source,
            department=row.department or None,
            created_at=_local(row.created_at, zone),
            mode=row.mode,
            citations=list(row.citations or []),
            root_cause=row.root_cause,  # a reviewer's relabel wins over the classifier
            is_objection=bool(row.is_objection),
            review_status=str(row.status) if row.status is not None else None,
            stance_checked=row.stance_given is not None or (row.status is not None and row.status != "pending"),
        )
    _attach_feedback(session, query, zone, records)
    return list(records.values())


def _attach_feedback(session: Session, query: ReportQuery, zone: ZoneInfo, records: dict[int, Record]) -> None:
    stmt = (
        select(Feedback.question_id, Feedback.helpful, Feedback.comment)
        .join(Question, Question.id == Feedback.question_id)
        .where(*_conditions(query, zone))
        .order_by(Feedback.created_at, Feedback.id)
    )
    for question_id, helpful, comment in session.execute(stmt):
        if question_id in records:
            records[question_id].feedback.append(FeedbackRecord(bool(helpful), comment))


def known_departments(session: Session) -> list[str]:
    """Every department that has asked something, for the dashboard's filter."""
    stmt = select(Question.department).where(Question.department.is_not(None)).distinct()
    return sorted(d for d in session.scalars(stmt) if d)
