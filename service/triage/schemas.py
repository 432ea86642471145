"""Pydantic I/O for /v1/ask and /v1/feedback."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.llm.client import Usage

Mode = Literal["approved", "llm", "extractive", "abstain"]
# Where a stored question came from: the three a client may claim, plus the CLI and the eval suite.
Source = Literal["widget", "api", "survey", "cli", "eval"]


class AskRequest(BaseModel):
    question: str = Field(description="A question or objection in Japanese or English (at most 2,000 characters).")
    department: str | None = Field(default=None, max_length=100)
    source: Literal["widget", "api", "survey"] = "api"
    stream: bool = Field(default=False, description="Answer as Server-Sent Events (also: Accept: text/event-stream).")


class Citation(BaseModel):
    n: int
    doc_id: str
    chunk_id: str
    title: str
    url: str
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
    mode: Literal["approved", "llm", "extractive", "abstain"]
    status: Literal["draft", "approved", "pending_review"] = Field(
        description="draft: an AI draft under review; approved: a reviewer-approved answer; pending_review: hidden"
    )
    flags: list[str] = Field(
        description="Why a reviewer should look closely: llm_unavailable, llm_bad_output, invalid_citation, "
        "system_prompt_leak, kb_not_supporting, llm_no_answer, no_citation"
    )
    lang: Literal["ja", "en"]
    usage: UsageOut


class FeedbackRequest(BaseModel):
    id: str = Field(description="The id of the answer, from /v1/ask.")
    helpful: bool
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackResponse(BaseModel):
    id: str
    stored: bool = True
