"""Rows for bulk classification jobs: one per job, one per classified input row."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, StrEnumType, UTCDateTime, utcnow


class JobStatus(StrEnum):
    """A bulk job's life: queued, running (while any process works on one of its chunks), then done or failed."""

    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


UNFINISHED = (JobStatus.queued, JobStatus.running)
CHUNK_ROWS = 128  # rows per chunk: what one process claims, classifies and stores in one transaction


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    status: Mapped[JobStatus] = mapped_column(StrEnumType(JobStatus), default=JobStatus.queued, index=True)
    source: Mapped[str] = mapped_column(String(8))  # cli | api
    input_path: Mapped[str] = mapped_column(Text)
    input_name: Mapped[str] = mapped_column(String(255))
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)  # text_column, department_column, encoding, sheet, suggest
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    error_rows: Mapped[int] = mapped_column(Integer, default=0)
    review_rows: Mapped[int] = mapped_column(Integer, default=0)
    unique_texts: Mapped[int] = mapped_column(Integer, default=0)
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)  # time spent classifying, summed over resumes
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Added by 0009: the process running a CLI job whole and until when its claim holds; renewed while it works, so
    # a job whose process died is taken over once the lease has run out, and a live one is never touched. API jobs
    # are claimed chunk by chunk instead (JobChunk), by any number of processes at once.
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The classifier version (reviewers' relabels learnt, see review.decisions.sync_classifier) of the latest run.
    classifier_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobRow(Base):
    """The result for one input row; the primary key makes a row impossible to store twice."""

    __tablename__ = "job_rows"
    __table_args__ = (
        Index("ix_job_rows_job_text_key", "job_id", "text_key"),
        Index("ix_job_rows_text_key", "text_key"),  # 0010: review questions found across jobs by comment
    )

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    row_index: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based data row, in file order
    text_key: Mapped[str | None] = mapped_column(String(32), nullable=True)  # hash of the normalised comment
    department: Mapped[str | None] = mapped_column(String(200), nullable=True)
    root_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    secondary_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_objection: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    needs_review: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    matched_doc_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    matched_title: Mapped[str | None] = mapped_column(Text, nullable=True)
    suggested_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    classifier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id", ondelete="SET NULL"), nullable=True)


class JobFile(Base):
    """An uploaded job's input file, in blocks (added by 0010): the database is the one store every process (on any
    machine) reads, so a job survives the process that took the upload and runs anywhere."""

    __tablename__ = "job_files"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based block number
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobChunk(Base):
    """CHUNK_ROWS rows of a job by row index (chunk seq holds rows seq*CHUNK_ROWS ...), added by 0015: claimed by one
    process at a time with a lease renewed while it works, taken over once the lease runs out, stored once."""

    __tablename__ = "job_chunks"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the process working on it now
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the process that stored its rows
