"""Bulk classification jobs: create, run chunk by chunk (each chunk one transaction), resume, progress.

A job's rows are divided in chunks of CHUNK_ROWS by row index; a process claims a chunk with a lease, classifies it
and stores its rows with the chunk marked done, so a run that was interrupted (Ctrl-C, kill -9, a server restart)
continues where it stopped, and several processes work on one job at once. The primary key (job, row) makes storing
a row twice impossible, and the output is written from the input plus the stored rows, so every input row appears
exactly once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope, utcnow
from service.errors import Conflict, NemawashiError, NotFound
from service.jobs.chunks import PROCESS, ChunkRows, Heartbeat, died_here, free_dead_chunks
from service.jobs.columns import Layout, RowResult, resolve_layout
from service.jobs.dedup import Cached, ResultCache, comment_key, stored_results
from service.jobs.engine import CommentClassifier, Outcome
from service.jobs.models import CHUNK_ROWS, Job, JobStatus
from service.jobs.readers import DEFAULT_LIMITS, InputRow, Source, SpreadsheetLimits, open_source, read_text
from service.jobs.repository import (
    add_rows,
    claim,
    claim_chunk,
    earlier_questions,
    ensure_chunks,
    file_blocks,
    finish_if_complete,
    has_file,
    job_by_public_id,
    question_pk,
    release,
    release_chunks,
    start,
    store_chunk,
    stored_row_indexes,
    supersede,
)
from service.llm.client import Usage
from service.logging import get_logger
from service.review.service import SqlReviewQueue
from service.triage.models import Question, QuestionSource
from service.triage.schemas import Flag
from service.triage.service import store_for_review

log = get_logger("jobs")
DEPARTMENT_CHARS = 100


@dataclass(frozen=True)
class JobOptions:
    """How to read the file; text and department columns are stored resolved, so a resumed run reads the same."""

    text_column: str | None = None
    department_column: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    suggest: bool = False
    text_index: int | None = None
    department_index: int | None = None


@dataclass(frozen=True)
class JobContext:
    """What running a job needs: settings, sessions and a classifier."""

    settings: Settings
    sessions: sessionmaker[Session]
    classifier: CommentClassifier


@dataclass(frozen=True)
class Prepared:
    row: InputRow
    text: str
    department: str | None
    key: str | None
    error: str | None
    flags: tuple[Flag, ...] = ()


ProgressHook = Callable[[Job], None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def spreadsheet_limits(settings: Settings) -> SpreadsheetLimits:
    """The XLSX limits the settings ask for."""
    return SpreadsheetLimits(settings.xlsx_max_unzipped_mb, settings.xlsx_max_columns, settings.xlsx_max_cells)


def open_input(
    path: Path, options: JobOptions, *, limits: SpreadsheetLimits | None = DEFAULT_LIMITS
) -> tuple[Source, Layout]:
    """The file opened and its columns resolved (stored indices win over names, once a job has them)."""
    source = open_source(path, encoding=options.encoding, sheet=options.sheet, limits=limits)
    if options.text_index is not None and options.text_index < len(source.columns):
        return source, Layout(
            options.text_index, source.columns[options.text_index], options.department_index, options.department_column
        )
    layout = resolve_layout(source, text_column=options.text_column, department_column=options.department_column)
    return source, layout


def local_input(settings: Settings, sessions: sessionmaker[Session], job: Job) -> Path:
    """The job's input file on this machine. The path it was read from when it is here (the CLI's file, or the upload
    in the data dir of the process that took it); otherwise the upload stored in the database (job_files), written
    once into this process's data dir. So any process, on any machine, can run the job and write its results."""
    path = Path(job.input_path)
    if path.is_file():
        return path
    cached = settings.data_dir / "jobs" / f"job-{job.public_id}" / path.name
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.name}.{secrets.token_hex(4)}.part")  # a concurrent reader never sees half
    with session_scope(sessions) as session:
        if not has_file(session, job_pk=job.id):
            raise NotFound(
                f"the file of job {job.public_id} ({job.input_name}) is not on this machine and not in the database "
                "(a job from before uploads were stored there): upload the file again",
                detail={"id": job.public_id, "input": job.input_name},
            )
        with partial.open("wb") as out:
            for block in file_blocks(session, job_pk=job.id):
                out.write(block)
    if file_sha256(partial) != job.input_sha256:
        partial.unlink(missing_ok=True)
        raise NemawashiError(f"the stored file of job {job.public_id} does not match its checksum: upload it again")
    os.replace(partial, cached)
    log.info("jobs.input_restored", job=job.public_id, path=str(cached))
    return cached


def create_job(
    session: Session,
    *,
    source: str,
    path: Path,
    name: str,
    options: JobOptions,
    output_path: Path | None = None,
    limits: SpreadsheetLimits = DEFAULT_LIMITS,
) -> Job:
    """A queued job for the file; BadInput when the file cannot be classified at all."""
    reader, layout = open_input(path, options, limits=limits)
    resolved = replace(
        options,
        text_column=layout.text_column,
        text_index=layout.text_index,
        department_column=layout.department_column,
        department_index=layout.department_index,
        encoding=options.encoding or reader.encoding,
        sheet=reader.sheet,
    )
    job = Job(
        public_id=str(uuid.uuid4()),
        status=JobStatus.queued,
        source=source,
        input_path=str(path),
        input_name=name[:255],
        input_sha256=file_sha256(path),
        output_path=str(output_path) if output_path else None,
        options=asdict(resolved),
        total_rows=sum(1 for _ in reader.rows()),
        done_rows=0,
        error_rows=0,
        review_rows=0,
        unique_texts=0,
        llm_calls=0,
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0.0,
        seconds=0.0,
    )
    session.add(job)
    session.flush()
    ensure_chunks(session, job_pk=job.id, total_rows=job.total_rows)
    replaced = supersede(session, job)
    log.info(
        "jobs.created", job=job.public_id, rows=job.total_rows, source=source, format=reader.format, replaced=replaced
    )
    return job


def get_job(session: Session, *, job_id: str) -> Job:
    job = job_by_public_id(session, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}", detail={"id": job_id})
    return job


def job_options(job: Job) -> JobOptions:
    return JobOptions(**job.options)


class JobBusy(Conflict):
    """Another live process holds the (CLI) job's lease."""


class LeaseLost(NemawashiError):
    """The chunk was taken over while this process worked on it (its lease ran out), or the job was replaced or
    failed meanwhile: stop, store nothing more."""


def run_job(
    ctx: JobContext,
    *,
    job_id: str,
    stop: threading.Event | None = None,
    on_progress: ProgressHook | None = None,
    owner: str = PROCESS,
) -> Job:
    """Classify the chunks not stored yet, one transaction each; returns the job (done, or running when stopped or
    while other processes still work on its last chunks).

    Each chunk is claimed with a lease, renewed while it is classified and checked when it is stored, so any number
    of processes work on one job and no chunk is stored twice; whoever stores the last one marks the job done. A
    CLI job is also claimed whole (JobBusy when another live process holds it): its process writes the output."""
    job = _start(ctx, job_id=job_id, owner=owner)
    if job.status != JobStatus.running:
        return job
    lease_s = ctx.settings.job_lease_s
    heartbeat = Heartbeat(ctx.sessions, job_pk=job.id, owner=owner, lease_s=lease_s, whole=job.source == "cli")
    try:
        # Accepted under the spreadsheet limits when the job was created; raising them since must not strand it.
        source, layout = open_input(local_input(ctx.settings, ctx.sessions, job), job_options(job), limits=None)
        rows, cache = ChunkRows(source), ResultCache(ctx.sessions, job.id)
        with heartbeat:
            while not (stop is not None and stop.is_set()):
                with session_scope(ctx.sessions) as session:
                    seq = claim_chunk(session, job_pk=job.id, owner=owner, now=utcnow(), lease_s=lease_s)
                if seq is None:
                    break
                heartbeat.chunk = seq
                job = _process_chunk(ctx, job, seq, rows.chunk(seq), layout, cache, owner=owner)
                heartbeat.chunk = None
                if on_progress:
                    on_progress(job)
            else:
                return _pause(ctx.sessions, job, owner)
    except LeaseLost as exc:
        log.warning("jobs.lease_lost", job=job_id, owner=owner, reason=exc.message)
        with session_scope(ctx.sessions) as session:
            return get_job(session, job_id=job_id)
    except NemawashiError as exc:
        return fail_job(ctx.sessions, job_id, exc.message)
    finally:  # the chunk in progress, after an error: another process takes it at once
        with contextlib.suppress(Exception), session_scope(ctx.sessions) as session:
            release_chunks(session, job_pk=job.id, owners=[owner])
    return _finish(ctx.sessions, job_id)


def _start(ctx: JobContext, *, job_id: str, owner: str) -> Job:
    """The job, running: a CLI job claimed whole (JobBusy when a live process holds it), an API job marked running;
    its chunks made, and those of processes that died here released. Not running when it is done or was replaced."""
    lease_s = ctx.settings.job_lease_s
    with session_scope(ctx.sessions) as session:
        job = get_job(session, job_id=job_id)
        if job.status == JobStatus.done:
            return job
        if job.source == "cli":
            _claim_whole(session, job, owner=owner, lease_s=lease_s)
        else:
            start(session, job_pk=job.id)
        ensure_chunks(session, job_pk=job.id, total_rows=job.total_rows)
        job.classifier_version = getattr(ctx.classifier, "version", None)  # what this run classifies with
        session.flush()
        session.refresh(job)
    with session_scope(ctx.sessions) as session:
        free_dead_chunks(session, job_pk=job.id, owner=owner, whole=job.source == "cli")
    return job


def _claim_whole(session: Session, job: Job, *, owner: str, lease_s: float) -> None:
    if not claim(session, job_id=job.public_id, owner=owner, now=utcnow(), lease_s=lease_s):
        session.refresh(job)
        if job.owner and died_here(job.owner):  # killed on this machine: no need to wait for its lease
            log.info("jobs.taking_over", job=job.public_id, previous=job.owner)
            job.owner = None
            session.flush()
            claim(session, job_id=job.public_id, owner=owner, now=utcnow(), lease_s=lease_s)
    session.refresh(job)
    if job.owner != owner:
        raise JobBusy(
            f"job {job.public_id} is being run by another process ({job.owner}): it continues there, or here once "
            "that process has stopped renewing its claim",
            detail={"owner": job.owner, "status": job.status},
        )


def _pause(sessions: sessionmaker[Session], job: Job, owner: str) -> Job:
    """Stopped between chunks: a CLI job is given up at once (the next run continues it)."""
    if job.source == "cli":
        with session_scope(sessions) as session:
            release(session, job_pk=job.id, owner=owner)
    log.info("jobs.paused", job=job.public_id, done=job.done_rows, total=job.total_rows)
    return job


def fail_job(sessions: sessionmaker[Session], job_id: str, message: str) -> Job:
    with session_scope(sessions) as session:
        job = get_job(session, job_id=job_id)
        job.status, job.message = JobStatus.failed, message
        job.owner, job.lease_expires_at = None, None
    log.error("jobs.failed", job=job_id, reason=message)
    return job


def _finish(sessions: sessionmaker[Session], job_id: str) -> Job:
    """The job, marked done if every chunk is stored (by this process or others); as it is otherwise."""
    with session_scope(sessions) as session:
        job = get_job(session, job_id=job_id)
        finished = finish_if_complete(session, job_pk=job.id, now=utcnow())
        session.refresh(job)
    if finished:
        log.info("jobs.done", job=job_id, rows=job.done_rows, errors=job.error_rows, seconds=round(job.seconds, 1))
    return job


def prepare_row(row: InputRow, layout: Layout, max_chars: int) -> Prepared:
    text = read_text(row.cells[layout.text_index])
    department = None
    if layout.department_index is not None:
        department = read_text(row.cells[layout.department_index])[:DEPARTMENT_CHARS] or None
    error = row.error
    if error is None and not text:
        error = f"no comment in column {layout.text_column!r}"
    elif error is None and len(text) > max_chars:
        error = (
            f"the comment is {len(text):,} characters; the limit is {max_chars:,} "
            "(NEMAWASHI_MAX_QUERY_CHARS): shorten or split it"
        )
    flags = (Flag.unsafe_characters_removed,) if row.cleaned else ()
    return Prepared(row, text, department, None if error else comment_key(text), error, flags)


def _process_chunk(
    ctx: JobContext, job: Job, seq: int, chunk: list[InputRow], layout: Layout, cache: ResultCache, *, owner: str
) -> Job:
    """Classify a claimed chunk's rows and store them with the chunk marked done, in one transaction."""
    started = time.perf_counter()
    with session_scope(ctx.sessions) as session:
        first = seq * CHUNK_ROWS
        stored = stored_row_indexes(session, job_pk=job.id, first=first, last=first + CHUNK_ROWS - 1)
    prepared = [prepare_row(row, layout, ctx.settings.max_query_chars) for row in chunk if row.index not in stored]
    known = cache.get_many({p.key for p in prepared if p.key})
    fresh: dict[str, Prepared] = {}
    for p in prepared:
        if p.key and p.key not in known and p.key not in fresh:
            fresh[p.key] = p
    usage = Usage()
    outcomes = _classify(ctx.classifier, list(fresh.values()), usage)
    with session_scope(ctx.sessions) as session:
        if not store_chunk(session, job_pk=job.id, seq=seq, owner=owner, now=utcnow()):
            raise LeaseLost(f"chunk {seq} of job {job.public_id} was taken over by another process")
        # Comments another process stored meanwhile keep its result and review question; they are not new here.
        known |= stored_results(session, job_pk=job.id, text_keys=set(fresh))
        new: dict[str, Cached] = {}
        reviewed = [k for k, o in outcomes.items() if isinstance(o, Outcome) and o.review.needed and k not in known]
        asked = earlier_questions(session, text_keys=reviewed) if reviewed else {}
        for key, p in fresh.items():
            outcome = outcomes[key]
            if isinstance(outcome, Outcome) and key not in known:
                new[key] = (outcome.result(), asked.get(key) or _review_question(session, p, outcome))
        results = {**known, **new}
        rows = [
            _row_values(job.id, p, results.get(p.key) if p.key else None, outcomes.get(p.key or "")) for p in prepared
        ]
        seconds = time.perf_counter() - started
        if not add_rows(session, job_pk=job.id, rows=rows, unique=len(new), usage=usage, seconds=seconds):
            raise LeaseLost(f"job {job.public_id} is no longer running (replaced or failed)")
        current = session.get_one(Job, job.id, populate_existing=True)
    cache.put_many(results)
    return current


def _classify(classifier: CommentClassifier, fresh: list[Prepared], usage: Usage) -> dict[str, Outcome | str]:
    """Outcomes by comment key; when the batch fails, each comment alone, and an error string for those that fail."""
    if not fresh:
        return {}
    try:
        outcomes = classifier.classify_many(
            [p.text for p in fresh], departments=[p.department for p in fresh], usage=usage
        )
        return {p.key or "": o for p, o in zip(fresh, outcomes, strict=True)}
    except Exception as exc:  # one poisonous comment must not sink its chunk: retry one by one
        log.warning("jobs.chunk_failed", comments=len(fresh), reason=type(exc).__name__)
    results: dict[str, Outcome | str] = {}
    for p in fresh:
        try:
            results[p.key or ""] = classifier.classify_many([p.text], departments=[p.department], usage=usage)[0]
        except Exception as exc:
            message = exc.message if isinstance(exc, NemawashiError) else f"{type(exc).__name__}: {exc}"
            results[p.key or ""] = f"classification failed: {message[:300]}"
    return results


def _review_question(session: Session, p: Prepared, outcome: Outcome) -> int | None:
    """The review-queue question for a low-confidence comment (ask() already made one with --suggest)."""
    if outcome.question_public_id:
        return question_pk(session, public_id=outcome.question_public_id)
    if not outcome.review.needed:
        return None
    question = Question(text=p.text, lang=outcome.lang, source=QuestionSource.survey, department=p.department)
    store_for_review(
        session,
        question,
        outcome.classification,
        queue=SqlReviewQueue(),
        urgent=outcome.review.urgent,
        vector=outcome.vector,
        embedder=outcome.embedder,
    )
    return question.id


def _row_values(job_pk: int, p: Prepared, cached: Cached | None, failure: Outcome | str | None) -> dict[str, Any]:
    """The job_rows values for one input row: its comment's result, or why it has none."""
    keys = {"job_id": job_pk, "row_index": p.row.index, "text_key": p.key, "department": p.department}
    if cached is None:
        error = p.error or (failure if isinstance(failure, str) else "not classified")
        return {**keys, **RowResult(error=error, flags=p.flags).values(), "question_id": None}
    result, question_id = cached
    values = result.values()
    values["flags"] = list(dict.fromkeys([*values["flags"], *p.flags]))  # flags of this row, not of its comment
    return {**keys, **values, "question_id": question_id}
