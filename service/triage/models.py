"""Rows for questions, their drafts, classifications and the askers' feedback."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, StrEnumType, UTCDateTime, utcnow


class QuestionSource(StrEnum):
    """Where a stored question came from: the four a client may claim (langchain: the LangChain components in
    service/integrations), plus the CLI, the eval suite and reviewers' phrasings."""

    widget = "widget"
    api = "api"
    survey = "survey"
    cli = "cli"
    eval = "eval"
    langchain = "langchain"
    review = "review"  # another phrasing of an approved answer, added by a reviewer (not a question anyone asked)


class AnswerMode(StrEnum):
    """Who answered: a reviewer (approved), the FAQ as written, an LLM draft, excerpts, or nobody (abstain)."""

    approved = "approved"
    faq = "faq"
    llm = "llm"
    extractive = "extractive"
    abstain = "abstain"


class Question(Base):
    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(8))
    source: Mapped[QuestionSource] = mapped_column(StrEnumType(QuestionSource))
    department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    asker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A follow-up keeps what the asker typed in text and the question it was searched as here.
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    standalone_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The SHA-256 of the asker's follow-up link token (triage/links.py); None for survey rows and older questions.
    followup_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)
    # Added by 0008: the asker's address as the trusted SSO proxy gave it, and the follow-up token sealed under
    # NEMAWASHI_LINK_KEY (service/sealing.py) so the e-mail about a later decision can carry the link.
    asker_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    followup_sealed: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    answer: Mapped[Answer] = relationship(back_populates="question", uselist=False)
    classification: Mapped[ClassificationRow] = relationship(back_populates="question", uselist=False)


class Answer(Base):
    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), unique=True)
    mode: Mapped[AnswerMode] = mapped_column(StrEnumType(AnswerMode))
    text: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    flags: Mapped[list[str]] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prompt_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[int] = mapped_column(Integer)

    question: Mapped[Question] = relationship(back_populates="answer")


class ClassificationRow(Base):
    __tablename__ = "classifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), unique=True)
    primary: Mapped[str] = mapped_column(String(32), index=True)
    secondary: Mapped[str | None] = mapped_column(String(32), nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    is_objection: Mapped[bool] = mapped_column(Boolean)
    rationale: Mapped[str] = mapped_column(Text)
    classifier: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prompt_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    flags: Mapped[list[str]] = mapped_column(JSON)

    question: Mapped[Question] = relationship(back_populates="classification")


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
