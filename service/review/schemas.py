"""Pydantic I/O for /v1/review: the queue, item detail, decisions, and the audit log."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from service.db import UTCTime
from service.review.models import ReviewStatus
from service.text import SafeStr
from service.triage.models import AnswerMode
from service.triage.schemas import Citation, Source

Status = ReviewStatus
Sort = Literal["priority", "lowest_confidence", "most_asked", "newest", "oldest"]


class ReviewProblem(StrEnum):
    """Why a decision or a phrasing was refused, as the `code` in the error's `detail`: the API's `error` stays
    English for programs, and the item page words each code in its language (service/web/i18n.py, refusals) from
    the values the detail carries."""

    not_allowed_from = "not_allowed_from"  # the action cannot start from the item's status
    no_draft = "no_draft"
    unknown_root_cause = "unknown_root_cause"
    unknown_assignee = "unknown_assignee"
    idempotency_key_reused = "idempotency_key_reused"
    idempotency_key_busy = "idempotency_key_busy"
    answered_elsewhere = "answered_elsewhere"  # a phrasing belongs on the item whose decision answered this one
    not_approved_for_reuse = "not_approved_for_reuse"
    wrong_language = "wrong_language"
    duplicate_phrasing = "duplicate_phrasing"
    stale_phrasing = "stale_phrasing"


class ItemQuery(BaseModel):
    """Filters, sort and page of a queue listing (the API's query parameters and the /review filter form)."""

    status: list[Status] = Field(default_factory=list, description="Any of these statuses (default: all).")
    root_cause: list[SafeStr] = Field(default_factory=list, description="The reviewer's label, else the classifier's.")
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_confidence: float | None = Field(default=None, ge=0, le=1)
    source: list[Source] = Field(default_factory=list)
    department: list[SafeStr] = Field(default_factory=list)
    mode: list[AnswerMode] = Field(default_factory=list, description="How each was answered.")
    assignee: SafeStr | None = None
    since: date | None = Field(default=None, description="Asked on or after this day (UTC).")
    until: date | None = Field(default=None, description="Asked on or before this day (UTC).")
    sort: Sort = Field(
        default="priority",
        description="priority: flagged first, then oldest; lowest_confidence; most_asked: biggest groups of "
        "near-duplicate questions first; newest; oldest",
    )
    group: bool = Field(default=True, description="One row per group of near-duplicate questions.")
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=50, ge=1, le=200)


class ItemSummary(BaseModel):
    id: int
    version: int
    status: str
    priority: str
    question: str
    lang: str
    source: str
    department: str | None
    created_at: UTCTime
    mode: str | None
    flags: list[str]
    root_cause: str | None = Field(description="The reviewer's label when relabelled, else the classifier's.")
    classifier_root_cause: str | None
    confidence: float | None
    assignee: str | None
    updated_by: str | None
    updated_at: UTCTime
    group_size: int = 1
    group_ids: list[int] = Field(default_factory=list, description="Every item in the group, this one first.")


class ItemPage(BaseModel):
    items: list[ItemSummary]
    total: int = Field(description="Rows (groups when grouped) matching the filters, over all pages.")
    page: int
    per_page: int
    sort: Sort
    grouped: bool


class QuestionOut(BaseModel):
    public_id: str
    text: str
    lang: str
    source: str
    department: str | None
    asker: str | None
    created_at: UTCTime
    conversation_id: str | None = None
    standalone_text: str | None = Field(default=None, description="A follow-up as it was searched.")


class DraftOut(BaseModel):
    mode: str
    text: str
    flags: list[str]
    model: str | None
    prompt_id: str | None
    prompt_hash: str | None


class CitedPassage(Citation):
    passage: str | None = Field(description="The whole cited passage, as indexed now (None if it was removed).")


class ClassificationOut(BaseModel):
    primary: str
    secondary: str | None
    confidence: float
    is_objection: bool
    rationale: str
    classifier: str
    flags: list[str]


class FeedbackOut(BaseModel):
    helpful: bool
    comment: str | None
    created_at: UTCTime


class GroupMember(BaseModel):
    id: int
    version: int
    question: str
    similarity: float
    created_at: UTCTime


class SimilarItem(BaseModel):
    id: int
    question: str
    similarity: float
    status: str
    answer: str | None = Field(description="The approved text, or the draft when it was not approved.")
    reason: str | None
    decided_by: str | None
    decided_at: UTCTime | None


class AuditEntry(BaseModel):
    id: int
    item_id: int
    actor: str
    action: str
    outcome: Literal["applied", "conflict"]
    version: int = Field(description="The version the decision was made on.")
    before: dict[str, Any]
    after: dict[str, Any]
    note: str | None
    created_at: UTCTime


class ItemState(BaseModel):
    """An item's reviewable state: what a decision changes."""

    id: int
    version: int
    status: str
    priority: str
    assignee: str | None
    root_cause: str | None = Field(description="The reviewer's label, or None when not relabelled.")
    is_objection: bool | None = Field(default=None, description="The reviewer's word, or None when not given.")
    final_answer: str | None
    published_answer: str | None = Field(description="What /v1/ask returns for this question while approved.")
    kb_url: str | None = Field(description="The FAQ page of the approved answer.")
    reason: str | None
    answered_by: int | None
    updated_by: str | None
    updated_at: UTCTime
    decided_by: str | None
    decided_at: UTCTime | None


class Phrasing(BaseModel):
    """Another way of asking an approved answer's question: /v1/ask matches it like the question itself."""

    item_id: int = Field(description="The review item that holds it (approved with this item's decision).")
    text: str


class ItemDetail(BaseModel):
    item: ItemState
    question: QuestionOut
    draft: DraftOut | None
    citations: list[CitedPassage]
    classification: ClassificationOut | None
    root_cause: str | None = Field(description="The reviewer's label when relabelled, else the classifier's.")
    feedback: list[FeedbackOut]
    group: list[GroupMember] = Field(description="Pending near-duplicates one decision can answer (not this item).")
    similar: list[SimilarItem] = Field(description="Decided items with similar questions, most similar first.")
    audit: list[AuditEntry]
    reused: int = Field(default=0, description="New questions answered with this approved answer (and its group's).")
    phrasings: list[Phrasing] = Field(
        default_factory=list,
        description="Other questions this approved answer is matched through (its group's and those reviewers added).",
    )


BLANK = "must not be blank"  # the pages tell a blank field by it (and word it per field)


def _stripped(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(BLANK)
    return value


NonBlank = Annotated[SafeStr, AfterValidator(_stripped)]


class _Decision(BaseModel):
    version: int = Field(ge=1, description="The item version the decision was made on (from the item).")
    group: list[int] = Field(
        default_factory=list,
        max_length=500,
        description="Ids of near-duplicate items the same decision answers (from the item's group).",
    )


class Approve(_Decision):
    action: Literal["approve"]
    confirm_extract: bool = Field(
        default=False,
        description="Required for a draft that is only excerpts (answer mode extractive): nobody wrote it as an "
        "answer, so publishing it as it is must be confirmed (or edit it instead).",
    )


class Edit(_Decision):
    """Edit the draft and approve the edited text."""

    action: Literal["edit"]
    answer: NonBlank = Field(min_length=1, max_length=8000)
    reuse: bool | None = Field(
        default=None,
        description="Reuse the answer for similar questions (the approved answers and its /kb page). Default: yes, "
        "except for a reply to a question the assistant abstained on, which only its asker sees unless set.",
    )


class Reject(_Decision):
    action: Literal["reject"]
    reason: NonBlank = Field(min_length=1, max_length=2000)
    reply: str | None = Field(
        default=None,
        max_length=4000,
        description="Optional words to the asker, shown on their follow-up link instead of the rejected draft "
        "(the reason stays with reviewers).",
    )


class Withdraw(_Decision):
    """Stop reusing an approved answer."""

    action: Literal["withdraw"]
    reason: NonBlank = Field(min_length=1, max_length=2000)


class Relabel(_Decision):
    action: Literal["relabel"]
    root_cause: SafeStr | None = Field(
        default=None, min_length=1, max_length=32, description="The corrected root cause; null keeps the label."
    )
    is_objection: bool | None = Field(
        default=None,
        description="An objection to the plan (true) or a neutral question (false); null leaves the current word. "
        "Reports count only objections as objections.",
    )

    @model_validator(mode="after")
    def _says_something(self) -> Relabel:
        if self.root_cause is None and self.is_objection is None:
            raise ValueError("give root_cause, is_objection or both")
        return self


class Assign(_Decision):
    action: Literal["assign"]
    assignee: SafeStr | None = Field(default=None, description="A reviewer's name, or null to unassign.")


Decision = Annotated[Approve | Edit | Reject | Withdraw | Relabel | Assign, Field(discriminator="action")]


class DecisionResult(BaseModel):
    item: ItemState
    applied_to: list[int] = Field(description="Items the decision changed: this one, then its group.")
    skipped: list[int] = Field(description="Group items left alone (decided or changed by someone meanwhile).")
    published: list[str] = Field(description="Approved-answer ids now reused by /v1/ask.")
    withdrawn: list[str] = Field(description="Approved-answer ids no longer reused.")
    publish_pending: list[str] = Field(
        default_factory=list,
        description="Answer ids the decision committed but the vector store could not take yet (it was down): "
        "the reconciler publishes or withdraws them within NEMAWASHI_RECONCILE_INTERVAL_S; until then a withdrawn "
        "answer is still never served, because /v1/ask checks the database first.",
    )
    retrain: bool = Field(description="True when a relabel is teaching the local classifier.")
    replayed: bool = Field(default=False, description="True when this is the stored result of a retried request.")


class PhrasingIn(BaseModel):
    """POST /v1/review/items/{id}/phrasings: another way staff ask the approved answer's question."""

    text: NonBlank = Field(max_length=2000, description="The question as staff might ask it, in the answer's language.")
    version: int = Field(ge=1, description="The item version it was added on (from the item).")


class PhrasingResult(BaseModel):
    item: ItemState
    phrasing: Phrasing
    published: list[str] = Field(description="The approved-answer id the phrasing is now matched as.")
    publish_pending: list[str] = Field(
        default_factory=list, description="As for a decision: the vector store could not take it yet."
    )
