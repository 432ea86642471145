"""The jobs API's file side: uploads in (with a size limit), result files, the report and progress events out."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Literal

from fastapi.sse import ServerSentEvent
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope
from service.errors import Conflict, NemawashiError, problem
from service.jobs.models import Job
from service.jobs.problems import FileProblem
from service.jobs.report import render_report, report_labels
from service.jobs.repository import store_file
from service.jobs.results import Labels, summarize, write_result
from service.jobs.row_errors import row_error_words
from service.jobs.schemas import JobOut
from service.jobs.service import JobOptions, create_job, get_job, local_input, spreadsheet_limits
from service.triage.taxonomy import load_taxonomy
from service.web.i18n import TEXTS

COPY_BLOCK = 1 << 20
EVENT_POLL_S = 0.5
EVENT_MAX_S = 6 * 3600  # a progress stream ends by itself at the latest after this long
XLSX_LAYOUT = 3  # in the cached file's name: an XLSX written in an older layout is not served again
SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".jsonl", ".ndjson", ".json")


class TooLarge(NemawashiError):
    status_code = 413


def _limit(settings: Settings) -> int:
    return settings.upload_max_mb * 1024 * 1024


def refuse_oversized(content_length: str | None, settings: Settings) -> None:
    """413 before reading the body, when the request says it is too big."""
    if content_length and content_length.isdigit() and int(content_length) > _limit(settings) + 64 * 1024:
        raise _too_large(settings, int(content_length))


def _too_large(settings: Settings, size: int | None = None) -> TooLarge:
    sent = f" ({size / 1024 / 1024:.1f} MB)" if size else ""
    return TooLarge(
        f"the file is larger than the {settings.upload_max_mb} MB upload limit{sent}: "
        "split it, or run `nemawashi classify FILE` on the server",
        detail=problem(FileProblem.too_large, limit_mb=settings.upload_max_mb),
    )


def jobs_dir(settings: Settings) -> Path:
    return settings.data_dir / "jobs"


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).name)[:100] or "upload"
    return stem if Path(stem).suffix.lower() in SUFFIXES else stem + ".csv"


def submit_upload(
    settings: Settings, sessions: sessionmaker[Session], *, filename: str, stream: BinaryIO, options: JobOptions
) -> Job:
    """Store the upload (at most upload_max_mb) and create its job; nothing is kept when the file is refused.

    The bytes go to the database with the job, in the same transaction: every process can then run the job and
    serve its results (the copy in this data dir only saves reading them back here)."""
    folder = jobs_dir(settings) / f"upload-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    path = folder / _safe_name(filename or "upload.csv")
    try:
        _copy_limited(stream, path, _limit(settings), settings)
        with session_scope(sessions) as session:
            job = create_job(
                session,
                source="api",
                path=path,
                name=filename or path.name,
                options=options,
                limits=spreadsheet_limits(settings),
            )
            with path.open("rb") as stored:
                store_file(session, job_pk=job.id, stream=stored)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job


def _copy_limited(stream: BinaryIO, path: Path, limit: int, settings: Settings) -> None:
    written = 0
    with path.open("wb") as out:
        while block := stream.read(COPY_BLOCK):
            written += len(block)
            if written > limit:
                raise _too_large(settings)
            out.write(block)


def result_file(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    job_id: str,
    fmt: Literal["csv", "xlsx"],
    lang: str = "ja",
) -> Path:
    """The job's result as CSV (UTF-8 with BOM) or XLSX, written once the job is done, by whichever process is asked
    (from the rows and the input in the database) into its own data dir. An XLSX file names the root causes in
    lang beside their ids."""
    job = _done_job(sessions, job_id)
    name = f"result.{lang}.v{XLSX_LAYOUT}.xlsx" if fmt == "xlsx" else "result.csv"
    path = jobs_dir(settings) / f"job-{job.public_id}" / name
    if not path.exists():  # written to a temporary file, then renamed: two first downloads do not collide
        labels = result_labels(settings, lang) if fmt == "xlsx" else None
        write_result(sessions, job, path, input_file=local_input(settings, sessions, job), labels=labels)
    return path


def result_labels(settings: Settings, lang: str) -> Labels:
    """How an XLSX file in lang words its results: root-cause names beside their ids, headers and the sheet's name;
    in Japanese also yes/no, the classifier, the flags and why a row has no result. An English file keeps the machine
    values scripts read."""
    texts = TEXTS[lang]
    report = texts["jobrep"]
    labels = Labels(
        names={label.id: getattr(label.name, lang) for label in load_taxonomy(settings.taxonomy_file).labels},
        name_headers={"root_cause": report["cause_name"], "secondary_cause": report["secondary_name"]},
        headers=report["columns"],
        sheet=report["classified"],
    )
    if lang == "en":
        return labels
    yes_no = {True: report["yes"], False: report["no"]}
    words = {
        "is_objection": yes_no,
        "needs_review": yes_no,
        "classifier": texts["classifiers"],
        "flags": texts["flags"],
    }
    return replace(labels, values=words, separator=texts["jobs"]["list_separator"], errors=row_error_words(lang))


def report_html(settings: Settings, sessions: sessionmaker[Session], *, job_id: str, lang: str = "ja") -> str:
    """The job's HTML report, in one language."""
    job = _done_job(sessions, job_id)
    taxonomy = load_taxonomy(settings.taxonomy_file)
    with session_scope(sessions) as session:
        summary = summarize(session, job, causes=taxonomy.ids)
    return render_report(job, summary, report_labels(taxonomy, lang), mode=settings.classifier_mode, lang=lang)


def _done_job(sessions: sessionmaker[Session], job_id: str) -> Job:
    with session_scope(sessions) as session:
        job = get_job(session, job_id=job_id)
    if job.status != "done":
        percent = 100 * job.done_rows / job.total_rows if job.total_rows else 0
        raise Conflict(
            f"job {job_id} is {job.status} ({percent:.0f}% done): results are ready when it is done",
            detail={"status": job.status, "done_rows": job.done_rows, "total_rows": job.total_rows},
        )
    return job


def job_events(
    sessions: sessionmaker[Session], *, job_id: str, last_event_id: str | None = None
) -> Iterator[ServerSentEvent]:
    """Server-Sent Events: `progress` whenever the counts change, then `done` (or `failed`) with the final state.

    Each event's id names the state it carries; a client reconnecting with Last-Event-ID (after a restart, or to
    another process) gets the next event only once the state differs from the one it has."""
    with session_scope(sessions) as session:
        get_job(session, job_id=job_id)  # 404 before the stream starts
    return _events(sessions, job_id, last_event_id)


def _event_id(state: JobOut) -> str:
    return f"{state.status}-{state.done_rows}-{state.error_rows}"


def _events(sessions: sessionmaker[Session], job_id: str, last_event_id: str | None) -> Iterator[ServerSentEvent]:
    last = last_event_id
    deadline = time.monotonic() + EVENT_MAX_S
    while time.monotonic() < deadline:
        with session_scope(sessions) as session:
            state = JobOut.of(get_job(session, job_id=job_id))
        event_id = _event_id(state)
        if state.status in ("done", "failed"):
            yield ServerSentEvent(event=state.status, raw_data=state.model_dump_json(), id=event_id)
            return
        if event_id != last:
            yield ServerSentEvent(event="progress", raw_data=state.model_dump_json(), id=event_id, retry=3000)
            last = event_id
        time.sleep(EVENT_POLL_S)
    yield ServerSentEvent(event="timeout", raw_data=json.dumps({"id": job_id}))
