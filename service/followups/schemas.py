"""Pydantic I/O for /v1/followups: what an asker's follow-up link shows, one question or many at once."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from service.db import UTCTime
from service.triage.schemas import Citation

MAX_CHECK = 50  # follow-up links one widget checks in a request
MAX_TOKEN_CHARS = 100  # a real token has 43; longer input is not a token


class FollowupState(StrEnum):
    """Where the asker's question stands, as the asker may see it."""

    draft = "draft"  # an AI draft, not yet checked by the project team
    faq = "faq"  # the curated FAQ answer, as the project office wrote it
    approved = "approved"  # a reviewer-approved answer: reused, or the draft approved as it was
    corrected = "corrected"  # a reviewer approved an edited text: what the asker read first was changed
    rejected = "rejected"  # the draft (or a later-withdrawn answer) is not to be trusted; a reply when there is one
    sent_to_team = "sent_to_team"  # no answer from the knowledge base: the project team will reply
    answered_by_team = "answered_by_team"  # the project team replied to a question the service could not answer


class FollowupOut(BaseModel):
    id: str = Field(description="The answer id /v1/ask returned.")
    question: str
    lang: str
    state: FollowupState
    answer: str = Field(description="The text to show now: the reviewed answer, the draft, or a notice.")
    citations: list[Citation] = Field(description="The sources the text refers to as [n], as links to /kb pages.")
    notice: str | None = Field(description="What changed, in the question's language; None while nothing has.")
    changed: bool = Field(description="True once a reviewer's decision changed what the asker should see.")
    asked_at: UTCTime
    changed_at: UTCTime | None = Field(description="When that decision was made; None while unchanged.")


class FollowupCheck(BaseModel):
    tokens: list[str] = Field(
        min_length=1,
        max_length=MAX_CHECK,
        description=f"Up to {MAX_CHECK} follow-up tokens (the last part of each followup_url).",
    )


class FollowupCheckResult(BaseModel):
    results: list[FollowupOut | None] = Field(
        description="One entry per token, in the order sent; null for a token that is unknown or no longer valid."
    )
