"""Pydantic I/O for /v1/ask and /v1/feedback."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from service.llm.client import Usage
from service.text import NOT_BLANK, SafeStr
from service.triage.models import AnswerMode, QuestionSource

Mode = AnswerMode


class Flag(StrEnum):
    """Every flag an answer, a classification or a survey row can carry: raise them as members, never as string
    literals. Reviewers' pages name each in their language (service/web/i18n.py TEXTS[lang]["flags"] has exactly
    these keys, tests/web/test_pages_i18n.py). Members are str: stored JSON and `"x" in flags` see the value."""

    llm_unavailable = "llm_unavailable"
    llm_bad_output = "llm_bad_output"
    invalid_citation = "invalid_citation"
    system_prompt_leak = "system_prompt_leak"
    kb_not_supporting = "kb_not_supporting"
    llm_no_answer = "llm_no_answer"
    no_citation = "no_citation"
    rationale_rejected = "rationale_rejected"
    unsafe_characters_removed = "unsafe_characters_removed"  # a survey row's cells were cleaned (service/text.py)


_ANSWER_FLAGS = tuple(f for f in Flag if f is not Flag.unsafe_characters_removed)  # all but a survey row's
MAX_TURNS = 4  # previous turns a follow-up may carry; older ones add little and cost time
Source = QuestionSource


class Turn(BaseModel):
    """A previous turn of the conversation, as the widget shows it."""

    id: SafeStr | None = Field(default=None, max_length=36, description="The answer id /v1/ask returned for it.")
    question: SafeStr = Field(min_length=1, max_length=2000)
    answer: SafeStr | None = Field(default=None, max_length=4000)


class AskRequest(BaseModel):
    question: SafeStr = Field(
        description="A question or objection in Japanese or English (at most 2,000 characters).",
        json_schema_extra=NOT_BLANK,
    )
    department: SafeStr | None = Field(default=None, max_length=100)
    source: Literal["widget", "api", "survey", "langchain"] = "api"
    stream: bool = Field(default=False, description="Answer as Server-Sent Events (also: Accept: text/event-stream).")
    conversation_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$", description="The widget's conversation, for follow-ups."
    )
    history: list[Turn] = Field(
        default_factory=list, max_length=MAX_TURNS, description=f"Up to {MAX_TURNS} previous turns, oldest first."
    )

    @model_validator(mode="after")
    def _history_needs_conversation(self) -> AskRequest:
        if self.history and not self.conversation_id:
            raise ValueError("conversation_id is required with history")
        return self


class RelatedQuestion(BaseModel):
    """A close FAQ entry the asker may have meant (もしかして)."""

    question: str
    doc_id: str
    url: str


class Citation(BaseModel):
    n: int
    doc_id: str
    chunk_id: str
    title: str
    url: str = Field(description="The source's /kb page, opened at the cited passage (/kb/{doc_id}?passage=n#passage).")
    snippet: str
    score: float


class RootCause(BaseModel):
    primary: str
    secondary: str | None
    confidence: float
    rationale: str
    classifier: str


class UsageOut(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    llm_latency_ms: int = Field(default=0, description="Time spent waiting for the LLM.")
    latency_ms: int = Field(default=0, description="Time for the whole request inside the service.")

    def spent(self) -> Usage:
        """The LLM usage, for adding to a job's or an eval run's totals."""
        return Usage(
            calls=self.llm_calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_ms=self.llm_latency_ms,
            cost_usd=self.cost_usd,
        )


class AskResponse(BaseModel):
    id: str
    answer: str = Field(description="What the asker sees: the draft, the approved answer, or a notice.")
    draft: str = Field(description="The stored draft a reviewer will check (the same as answer unless review_first).")
    citations: list[Citation]
    root_cause: RootCause
    is_objection: bool
    mode: Mode = Field(
        description="approved: reviewer-approved answer; faq: curated FAQ answer; llm: AI draft; "
        "extractive: excerpts of the knowledge base; abstain: sent to the project team"
    )
    related: list[RelatedQuestion] = Field(default_factory=list, description="Other FAQ questions close to this one.")
    standalone_question: str | None = Field(
        default=None, description="A follow-up as it was searched, with the previous turn; null when not a follow-up."
    )
    conversation_id: str | None = None
    status: Literal["draft", "approved", "pending_review"] = Field(
        description="draft: an AI draft under review; approved: a reviewer-approved answer; pending_review: hidden"
    )
    flags: list[str] = Field(
        description=f"Why a reviewer should look closely: {', '.join(_ANSWER_FLAGS)} (rationale_rejected: the LLM's "
        "rationale was replaced by a quote of the question)"
    )
    lang: Literal["ja", "en"]
    usage: UsageOut
    followup_url: str | None = Field(
        default=None,
        description="The asker's private link to this question's current answer (GET it later: the reviewed "
        "answer, a correction, or the project team's reply). Shown once; keep it like a password.",
    )


class FeedbackRequest(BaseModel):
    id: SafeStr = Field(description="The id of the answer, from /v1/ask.")
    helpful: bool
    comment: SafeStr | None = Field(default=None, max_length=2000)


class FeedbackResponse(BaseModel):
    id: str
    stored: bool = True
