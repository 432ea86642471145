"""What the reports return: objection statistics (API and dashboard) and the plan-feedback report."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from service.db import UTCTime
from service.text import SafeStr
from service.triage.schemas import Source

Grouping = Literal["embedding", "normalised_text"]


class ReportQuery(BaseModel):
    """Filters of every report; days are calendar days in NEMAWASHI_TIMEZONE (Asia/Tokyo by default), both ends
    included."""

    since: date | None = Field(default=None, description="First day (YYYY-MM-DD), inclusive.")
    until: date | None = Field(default=None, description="Last day (YYYY-MM-DD), inclusive.")
    source: Source | None = Field(default=None, description="Only questions from this channel.")
    department: SafeStr | None = Field(default=None, max_length=100, description="Only questions from this department.")

    @field_validator("since", "until", "source", "department", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty form field (`?department=`) means no filter."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _since_before_until(self) -> Self:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self


class CauseName(BaseModel):
    id: str
    ja: str
    en: str


class CauseCount(BaseModel):
    """Questions (and how many of them were objections) of one root cause, department and ISO week."""

    week: str = Field(description='ISO week in NEMAWASHI_TIMEZONE, e.g. "2026-W48".')
    root_cause: str
    department: str | None
    questions: int
    objections: int


class Rates(BaseModel):
    """How the drafts fared: answer modes, abstentions, review decisions, askers' feedback."""

    questions: int
    objections: int
    unchecked_objections: int = Field(
        default=0,
        description="objections no person has checked: the classifier's guess (offline every on-topic comment "
        "counts), until a reviewer decides the item or sets its stance",
    )
    answer_modes: dict[str, int]
    abstained: int
    abstention_rate: float | None = Field(description="abstained / answered; null when nothing was answered")
    review_statuses: dict[str, int]
    reviewed: int = Field(description="review items no longer waiting for a decision")
    approved: int
    approval_rate: float | None = Field(description="approved / reviewed; null before the first decision")
    feedback: int
    helpful: int
    not_helpful: int
    helpful_rate: float | None
    reused: int = Field(default=0, description="questions answered with an approved answer, not reviewed again")


class QuestionGroup(BaseModel):
    """Near-duplicate questions the knowledge base could not answer (abstained or marked not helpful)."""

    representative: str
    count: int
    abstained: int
    not_helpful: int
    root_cause: str | None
    departments: list[str]
    variants: list[str] = Field(description="other wordings in the group (redacted)")
    comments: list[str] = Field(description="what askers wrote with a thumbs-down (redacted)")
    question_ids: list[str]
    last_seen: UTCTime


class RecurringObjection(BaseModel):
    """A question or objection raised again and again (near-duplicates grouped), with a representative quote."""

    root_cause: str
    count: int
    representative: str
    variants: list[str]
    departments: list[str]
    last_seen: UTCTime


class ObjectionReport(BaseModel):
    """GET /v1/reports/objections and the /dashboard page."""

    filters: ReportQuery
    timezone: str
    generated_at: UTCTime
    empty: bool
    root_causes: list[CauseName]
    weeks: list[str]
    departments: list[str | None]
    counts: list[CauseCount]
    rates: Rates
    unanswered: list[QuestionGroup]
    unanswered_questions: int
    recurring: list[RecurringObjection]
    grouping: Grouping
    grouped_limit: int = Field(description="only the newest this many questions are grouped per list")


class CitedEntry(BaseModel):
    """A knowledge-base entry that answers cited, with how often and how the answers were received."""

    doc_id: str
    title: str
    type: str
    url: str
    questions: int
    not_helpful: int


class Suggestion(BaseModel):
    """A proposed change to the plan, the FAQ or the risk register; people decide."""

    ja: str
    en: str
    basis: str = Field(description="why: the numbers or quotes it rests on (English, or as the LLM wrote it)")
    basis_ja: str = Field(default="", description="the same in Japanese; empty when only basis has it")
    doc_ids: list[str] = []
    by: Literal["llm", "rules"]


class WeekCount(BaseModel):
    week: str
    questions: int


class CauseSection(BaseModel):
    """Everything the steering committee reads about one root cause."""

    cause: CauseName
    questions: int
    objections: int
    unchecked_objections: int = Field(
        default=0,
        description="objections no person has checked: the classifier's guess (offline every on-topic comment "
        "counts), until a reviewer decides the item or sets its stance",
    )
    share: float | None
    weekly: list[WeekCount]
    departments: dict[str, int]
    quotes: list[RecurringObjection] = Field(description="what staff asked most often (near-duplicates grouped)")
    answered_by: list[CitedEntry]
    abstained: int
    not_helpful: int
    missing: list[QuestionGroup] = Field(description="abstained or marked not helpful, with the askers' comments")
    suggestions: list[Suggestion]


class PlanFeedbackReport(BaseModel):
    """`nemawashi report plan-feedback`: per root cause, what staff said, what answered it, what is missing."""

    filters: ReportQuery
    timezone: str
    generated_at: UTCTime
    empty: bool
    overview: ObjectionReport
    sections: list[CauseSection]
    suggestions_by: Literal["llm", "rules"]
    suggestions_model: str | None
    documents: dict[str, str] = Field(
        default={}, description="doc id → title of every entry an answer cited: suggestions link to them by title"
    )
    # Why the suggestions are rule-based although an LLM is configured, and the error that says so.
    suggestions_fallback: Literal["llm_unavailable", "llm_unusable"] | None = None
    suggestions_fallback_detail: str | None = None
