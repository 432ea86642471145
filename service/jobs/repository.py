"""SQL for jobs: find jobs, the rows already stored, earlier results by comment, and a chunk's rows with its counts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service.jobs.models import UNFINISHED, Job, JobRow
from service.llm.client import Usage
from service.triage.models import Question


def job_by_public_id(session: Session, job_id: str) -> Job | None:
    return session.scalars(select(Job).where(Job.public_id == job_id)).one_or_none()


def find_resumable(session: Session, *, input_sha256: str, output_path: Path) -> Job | None:
    """The latest CLI job for the same file and output, finished or not."""
    query = (
        select(Job)
        .where(Job.source == "cli", Job.input_sha256 == input_sha256, Job.output_path == str(output_path))
        .order_by(Job.id.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def unfinished_jobs(session: Session, *, source: str) -> list[str]:
    """Ids of jobs that were queued or running when their process stopped, oldest first."""
    query = select(Job.public_id).where(Job.source == source, Job.status.in_(UNFINISHED)).order_by(Job.id)
    return list(session.scalars(query))


def stored_row_indexes(session: Session, *, job_pk: int) -> set[int]:
    return set(session.scalars(select(JobRow.row_index).where(JobRow.job_id == job_pk)))


def classified_rows(session: Session, *, job_pk: int, text_keys: Iterable[str]) -> list[JobRow]:
    """The job's classified rows for these comments (any row per comment will do: they carry the same result)."""
    query = select(JobRow).where(
        JobRow.job_id == job_pk, JobRow.text_key.in_(sorted(text_keys)), JobRow.root_cause.is_not(None)
    )
    return list(session.scalars(query))


def question_pk(session: Session, *, public_id: str) -> int | None:
    """The primary key of a stored question (review-queue rows point at it)."""
    return session.scalars(select(Question.id).where(Question.public_id == public_id)).first()


def add_rows(session: Session, *, job_pk: int, rows: list[dict[str, Any]], unique: int, usage: Usage) -> Job:
    """Store a chunk's rows and add them, the new distinct comments and the LLM usage to the job's counts."""
    session.execute(insert(JobRow), rows)
    job = session.get_one(Job, job_pk)
    job.done_rows += len(rows)
    job.error_rows += sum(1 for r in rows if r["error"])
    job.review_rows += sum(1 for r in rows if r["needs_review"])
    job.unique_texts += unique
    job.llm_calls += usage.calls
    job.prompt_tokens += usage.prompt_tokens
    job.completion_tokens += usage.completion_tokens
    job.cost_usd = round(job.cost_usd + usage.cost_usd, 6)
    return job
