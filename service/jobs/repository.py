"""SQL for jobs: find jobs, the rows already stored, earlier results by comment, and a chunk's rows with its counts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from service.jobs.models import UNFINISHED, Job, JobFile, JobRow, JobStatus
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


def claimable_jobs(session: Session, *, source: str, now: datetime) -> list[str]:
    """Unfinished jobs no live process holds (never claimed, released, or their owner's lease ran out), oldest first."""
    query = (
        select(Job.public_id)
        .where(Job.source == source, Job.status.in_(UNFINISHED), or_(Job.owner.is_(None), Job.lease_expires_at < now))
        .order_by(Job.id)
    )
    return list(session.scalars(query))


def claim(session: Session, *, job_id: str, owner: str, now: datetime, lease_s: float) -> bool:
    """Take an unfinished (or failed, to retry it) job for owner unless another owner's lease is still live; True
    when taken.

    One conditional UPDATE, atomic on both databases: PostgreSQL locks the row and a second claimer re-reads the
    condition once the first commits (so it finds the new owner and takes nothing); SQLite has a single writer."""
    stmt = (
        update(Job)
        .where(
            Job.public_id == job_id,
            Job.status.in_([*UNFINISHED, JobStatus.failed]),
            or_(Job.owner.is_(None), Job.owner == owner, Job.lease_expires_at < now),
        )
        .values(owner=owner, lease_expires_at=now + timedelta(seconds=lease_s), status=JobStatus.running, message=None)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def renew(session: Session, *, job_pk: int, owner: str, now: datetime, lease_s: float) -> bool:
    """Extend owner's lease; False when the job is no longer theirs (taken over after their lease ran out)."""
    stmt = (
        update(Job)
        .where(Job.id == job_pk, Job.owner == owner, Job.status == JobStatus.running)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def release(session: Session, *, job_pk: int, owner: str) -> None:
    """Give the job up (a graceful stop): another process may take it at once."""
    stmt = (
        update(Job)
        .where(Job.id == job_pk, Job.owner == owner)
        .values(owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(stmt)


def supersede(session: Session, job: Job) -> list[str]:
    """Mark the unfinished jobs the new job replaces `failed: superseded by job X`; their ids.

    A CLI run writes to its output file, so every other unfinished CLI job for that output is replaced (a changed
    file, or a fresh run of the same one); an upload replaces unfinished uploads of the same name with other bytes.
    A process still running a replaced job loses its lease at the next chunk (renew needs `running`) and stops."""
    if job.source == "cli":
        same = Job.output_path == job.output_path
    else:
        same = (Job.input_name == job.input_name) & (Job.input_sha256 != job.input_sha256)
    query = select(Job).where(Job.source == job.source, Job.id != job.id, Job.status.in_(UNFINISHED), same)
    replaced = list(session.scalars(query.with_for_update()))
    for old in replaced:
        old.status, old.owner, old.lease_expires_at = JobStatus.failed, None, None
        old.message = f"superseded by job {job.public_id} / 新しいジョブ {job.public_id} に置き換えられました"
    return [old.public_id for old in replaced]


def earlier_questions(session: Session, *, text_keys: Iterable[str]) -> dict[str, int]:
    """Review-queue questions already made for these comments by any job (a re-run must not queue them again)."""
    query = (
        select(JobRow.text_key, JobRow.question_id)
        .where(JobRow.text_key.in_(sorted(text_keys)), JobRow.question_id.is_not(None))
        .distinct()
    )
    return {str(key): int(question) for key, question in session.execute(query) if question is not None}


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


FILE_BLOCK = 1 << 20  # one job_files row: small enough for any driver, few enough rows for a 50 MB upload


def store_file(session: Session, *, job_pk: int, stream: BinaryIO) -> int:
    """Store an uploaded file's bytes in blocks with its job (same transaction); returns the size."""
    size = 0
    for seq in itertools.count():
        block = stream.read(FILE_BLOCK)
        if not block:
            return size
        session.add(JobFile(job_id=job_pk, seq=seq, data=block))
        session.flush()  # one block in memory at a time
        size += len(block)
    raise AssertionError("unreachable")


def has_file(session: Session, *, job_pk: int) -> bool:
    return session.scalar(select(JobFile.seq).where(JobFile.job_id == job_pk).limit(1)) is not None


def file_blocks(session: Session, *, job_pk: int) -> Iterator[bytes]:
    """A stored file's blocks in order, one at a time."""
    query = select(JobFile.seq).where(JobFile.job_id == job_pk).order_by(JobFile.seq)
    for seq in list(session.scalars(query)):
        yield session.scalars(select(JobFile.data).where(JobFile.job_id == job_pk, JobFile.seq == seq)).one()
