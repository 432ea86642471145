"""SQL for jobs: find jobs, claim them (CLI jobs whole, API jobs chunk by chunk), the rows already stored, earlier
results by comment, and a chunk's rows with its counts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from service.db import utcnow
from service.jobs.models import CHUNK_ROWS, UNFINISHED, Job, JobChunk, JobFile, JobRow, JobStatus
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


def claimable_jobs(session: Session, *, source: str, now: datetime) -> list[str]:
    """Unfinished jobs with work no live process holds, oldest first: a chunk never claimed, released, or whose
    owner's lease ran out; or no chunk left to do (only the finishing is: its last process died before it)."""
    undone = select(JobChunk.seq).where(JobChunk.job_id == Job.id, JobChunk.done_at.is_(None))
    free = undone.where(or_(JobChunk.owner.is_(None), JobChunk.lease_expires_at < now))
    query = (
        select(Job.public_id)
        .where(Job.source == source, Job.status.in_(UNFINISHED), or_(~undone.exists(), free.exists()))
        .order_by(Job.id)
    )
    return list(session.scalars(query))


def chunk_holders(session: Session, *, source: str) -> list[tuple[str, str]]:
    """(job id, owner) of the chunks processes hold in unfinished jobs (to spot owners that died on this machine)."""
    query = (
        select(Job.public_id, JobChunk.owner)
        .join(JobChunk, JobChunk.job_id == Job.id)
        .where(
            Job.source == source, Job.status.in_(UNFINISHED), JobChunk.done_at.is_(None), JobChunk.owner.is_not(None)
        )
        .distinct()
    )
    return [(job_id, owner) for job_id, owner in session.execute(query) if owner]


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


def start(session: Session, *, job_pk: int) -> None:
    """Mark a queued job running (the first chunk is being claimed)."""
    stmt = (
        update(Job)
        .where(Job.id == job_pk, Job.status == JobStatus.queued)
        .values(status=JobStatus.running, message=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(stmt)


def chunk_count(total_rows: int) -> int:
    return -(-total_rows // CHUNK_ROWS)


def ensure_chunks(session: Session, *, job_pk: int, total_rows: int) -> None:
    """The job's chunks, made once (jobs from before 0015 have none). Touching the job row first serialises two
    processes doing this at once: the second finds the chunks the first made."""
    session.execute(update(Job).where(Job.id == job_pk).values(updated_at=utcnow()))
    if session.scalar(select(JobChunk.seq).where(JobChunk.job_id == job_pk).limit(1)) is None and total_rows:
        session.execute(insert(JobChunk), [{"job_id": job_pk, "seq": seq} for seq in range(chunk_count(total_rows))])


def claim_chunk(session: Session, *, job_pk: int, owner: str, now: datetime, lease_s: float) -> int | None:
    """Claim the first chunk that is not done and that no live lease holds; its number, or None when there is none.

    SKIP LOCKED (PostgreSQL) lets racing processes pick different chunks instead of queueing on one; the conditional
    UPDATE is what makes a claim exclusive on both databases (a claim lost to another process looks again)."""
    free = and_(
        JobChunk.job_id == job_pk,
        JobChunk.done_at.is_(None),
        or_(JobChunk.owner.is_(None), JobChunk.lease_expires_at < now),
    )
    first = select(JobChunk.seq).where(free).order_by(JobChunk.seq).limit(1).with_for_update(skip_locked=True)
    while (seq := session.scalar(first)) is not None:
        stmt = (
            update(JobChunk)
            .where(free, JobChunk.seq == seq)
            .values(owner=owner, lease_expires_at=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        if session.execute(stmt).rowcount:  # type: ignore[attr-defined]
            return seq
    return None


def renew_chunk(session: Session, *, job_pk: int, seq: int, owner: str, now: datetime, lease_s: float) -> bool:
    """Extend owner's lease on a chunk; False when it is no longer theirs."""
    stmt = (
        update(JobChunk)
        .where(JobChunk.job_id == job_pk, JobChunk.seq == seq, JobChunk.owner == owner, JobChunk.done_at.is_(None))
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def chunk_owners(session: Session, *, job_pk: int) -> list[str]:
    """The processes holding a chunk of the job that is not done (live or not)."""
    query = select(JobChunk.owner).where(
        JobChunk.job_id == job_pk, JobChunk.done_at.is_(None), JobChunk.owner.is_not(None)
    )
    return sorted({owner for owner in session.scalars(query) if owner})


def release_chunks(session: Session, *, job_pk: int, owners: list[str]) -> int:
    """Give up the chunks these processes hold and have not stored (a stop, an error, a dead process): any process
    may claim them at once. How many were released."""
    stmt = (
        update(JobChunk)
        .where(JobChunk.job_id == job_pk, JobChunk.owner.in_(owners), JobChunk.done_at.is_(None))
        .values(owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def store_chunk(session: Session, *, job_pk: int, seq: int, owner: str, now: datetime) -> bool:
    """Mark the chunk done by owner, in the transaction that stores its rows; False when owner no longer holds it
    (then nothing of it may be stored). The row stays locked until that transaction ends, so no one claims it."""
    stmt = (
        update(JobChunk)
        .where(JobChunk.job_id == job_pk, JobChunk.seq == seq, JobChunk.owner == owner, JobChunk.done_at.is_(None))
        .values(done_at=now, done_by=owner, owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def chunks_done_by(session: Session, *, job_pk: int) -> dict[str, int]:
    """How many of the job's chunks each process stored."""
    query = (
        select(JobChunk.done_by, func.count())
        .where(JobChunk.job_id == job_pk, JobChunk.done_at.is_not(None))
        .group_by(JobChunk.done_by)
    )
    return {owner or "": int(count) for owner, count in session.execute(query)}


def finish_if_complete(session: Session, *, job_pk: int, now: datetime) -> bool:
    """Mark the running job done once every chunk is stored; True for the one call that did (it runs after the
    chunk's own commit, so the process that stored the last chunk sees them all)."""
    undone = select(JobChunk.seq).where(JobChunk.job_id == job_pk, JobChunk.done_at.is_(None))
    stmt = (
        update(Job)
        .where(Job.id == job_pk, Job.status == JobStatus.running, ~undone.exists())
        .values(status=JobStatus.done, finished_at=now, owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def supersede(session: Session, job: Job) -> list[str]:
    """Mark the unfinished jobs the new job replaces `failed: superseded by job X`; their ids.

    A CLI run writes to its output file, so every other unfinished CLI job for that output is replaced (a changed
    file, or a fresh run of the same one); an upload replaces unfinished uploads of the same name with other bytes.
    A process still running a replaced job stores nothing more (a chunk is only added to a `running` job) and stops."""
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


def stored_row_indexes(session: Session, *, job_pk: int, first: int, last: int) -> set[int]:
    """The rows from first to last (inclusive) stored already (a chunk begun before jobs were split in chunks)."""
    query = select(JobRow.row_index).where(JobRow.job_id == job_pk, JobRow.row_index.between(first, last))
    return set(session.scalars(query))


def classified_rows(session: Session, *, job_pk: int, text_keys: Iterable[str]) -> list[JobRow]:
    """The job's classified rows for these comments (any row per comment will do: they carry the same result)."""
    query = select(JobRow).where(
        JobRow.job_id == job_pk, JobRow.text_key.in_(sorted(text_keys)), JobRow.root_cause.is_not(None)
    )
    return list(session.scalars(query))


def question_pk(session: Session, *, public_id: str) -> int | None:
    """The primary key of a stored question (review-queue rows point at it)."""
    return session.scalars(select(Question.id).where(Question.public_id == public_id)).first()


def add_rows(
    session: Session, *, job_pk: int, rows: list[dict[str, Any]], unique: int, usage: Usage, seconds: float
) -> bool:
    """Store a chunk's rows and add them, the new distinct comments and the LLM usage to the job's counts; False
    (nothing stored) when the job is no longer running (replaced, failed).

    The counts are added in SQL (`done_rows = done_rows + n`), so processes storing chunks at once never lose one."""
    stmt = (
        update(Job)
        .where(Job.id == job_pk, Job.status == JobStatus.running)
        .values(
            done_rows=Job.done_rows + len(rows),
            error_rows=Job.error_rows + sum(1 for r in rows if r["error"]),
            review_rows=Job.review_rows + sum(1 for r in rows if r["needs_review"]),
            unique_texts=Job.unique_texts + unique,
            llm_calls=Job.llm_calls + usage.calls,
            prompt_tokens=Job.prompt_tokens + usage.prompt_tokens,
            completion_tokens=Job.completion_tokens + usage.completion_tokens,
            cost_usd=Job.cost_usd + usage.cost_usd,
            seconds=Job.seconds + seconds,
        )
        .execution_options(synchronize_session=False)
    )
    if not session.execute(stmt).rowcount:  # type: ignore[attr-defined]
        return False
    if rows:
        session.execute(insert(JobRow), rows)
    return True


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
