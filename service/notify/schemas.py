"""What the outbox carries (payloads as stored) and what admins see of it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.db import UTCTime
from service.notify.models import Channel, Kind, OutboxStatus

AnswerState = Literal["approved", "corrected", "rejected", "answered_by_team"]


class SealedLink(BaseModel):
    """The asker's follow-up link as stored for an e-mail: the token sealed (service/sealing.py), never in clear."""

    sealed: str
    digest: str
    path: str = Field(description='The link\'s path with "{token}" where the token goes, e.g. /v1/followups/{token}')


class AnswerUpdated(BaseModel):
    """A reviewer's decision changed what an asker should see (the webhook's JSON body for answer.updated)."""

    event: Literal["answer.updated"] = "answer.updated"
    id: str = Field(description="The answer id /v1/ask returned to the asker.")
    state: AnswerState
    lang: str
    question: str
    answer: str
    decided_at: UTCTime


class AskerMail(BaseModel):
    """The e-mail row's payload: the answer, in the asker's language, and the sealed link; nothing else."""

    state: AnswerState
    lang: str
    answer: str
    link: SealedLink | None = None


class TeamEvent(BaseModel):
    """A new item the project team should look at (Teams, Slack and the webhook's body for these kinds)."""

    event: Literal["question.abstained", "draft.flagged"]
    item_id: int
    lang: str
    question: str = Field(description="The question with e-mail addresses and phone numbers redacted.")
    flags: list[str]
    review_path: str


class DailyDigest(BaseModel):
    """The project team's day in counts (Teams, Slack and the webhook): no question text, nobody's name."""

    event: Literal["digest.daily"] = "digest.daily"
    date: str = Field(description="The local date the digest is for (YYYY-MM-DD).")
    questions: int = Field(description="Questions asked in the last 24 hours.")
    abstained: int = Field(description="Of those, the ones the knowledge base could not answer.")
    flagged: int = Field(description="Of those, drafts flagged for a closer look.")
    approved: int = Field(description="Answers reviewers approved in the last 24 hours.")
    waiting: int = Field(description="Items waiting for a decision now.")
    review_path: str = "/review"


class OutboxOut(BaseModel):
    """A row as an admin sees it: where it goes and how delivery went (not the payload: it may hold answers)."""

    id: int
    channel: Channel
    receiver: str
    kind: Kind
    idempotency_key: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: UTCTime
    last_error: str | None
    created_at: UTCTime
    sent_at: UTCTime | None
