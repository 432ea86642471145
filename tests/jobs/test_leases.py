"""Job ownership across processes (issue 19.3): a job's chunks are claimed with a lease, renewed while worked on,
taken over only once their owner stopped renewing them, and stored by their current owner only, so several processes
share one job with no chunk done twice."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.bootstrap import open_database
from service.config import Settings
from service.db import make_sessionmaker, session_scope, utcnow
from service.jobs.engine import Outcome
from service.jobs.models import CHUNK_ROWS, Job, JobChunk, JobRow
from service.jobs.repository import chunks_done_by, claim, claim_chunk, claimable_jobs
from service.jobs.runner import JobRunner
from service.jobs.service import JobBusy, JobContext, JobOptions, create_job, get_job, run_job
from service.llm.client import Usage
from service.triage.cascade import ReviewCall
from service.triage.classifier import Classification
from tests.conftest import make_settings
from tests.jobs.helpers import distinct_comments, write_csv

A, B = "host-a:101:aaaaaa", "host-b:202:bbbbbb"  # two processes on two machines


class Labelling:
    """A classifier that labels every comment `process` at once (these tests are about ownership, not meaning)."""

    def __init__(self, *, pause: threading.Event | None = None, paused: threading.Event | None = None) -> None:
        self.calls = 0
        self._pause, self._paused = pause, paused

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
        self.calls += 1
        if self._pause is not None and self._paused is not None and self.calls == 2:
            self._paused.set()  # the first chunk is stored; hold the second one here
            self._pause.wait(30)
        label = Classification("process", None, 0.9, True, "", "local")
        return [Outcome(label, ReviewCall(needed=False, urgent=False)) for _ in texts]


@dataclass
class Queue:
    settings: Settings
    sessions: sessionmaker[Session]

    def context(self, classifier: Labelling) -> JobContext:
        return JobContext(self.settings, self.sessions, classifier)

    def create(self, path: Path) -> str:
        with session_scope(self.sessions) as session:
            job = create_job(session, source="api", path=path, name=path.name, options=JobOptions())
            return job.public_id

    def job(self, job_id: str) -> Job:
        with session_scope(self.sessions) as session:
            return get_job(session, job_id=job_id)

    def chunks_by(self, job_id: str) -> dict[str, int]:
        """How many chunks each process stored."""
        with session_scope(self.sessions) as session:
            return chunks_done_by(session, job_pk=get_job(session, job_id=job_id).id)

    def stored(self, job_id: str) -> int:
        with session_scope(self.sessions) as session:
            job = get_job(session, job_id=job_id)
            return int(session.scalar(select(func.count()).select_from(JobRow).where(JobRow.job_id == job.id)) or 0)


@pytest.fixture
def jobs(tmp_path: Path, database_url: str) -> Iterator[Queue]:
    settings = make_settings(tmp_path, database_url=database_url, job_lease_s=2.0)
    engine = open_database(settings)
    yield Queue(settings, make_sessionmaker(engine))
    engine.dispose()


@pytest.fixture
def survey(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "survey.csv", [[str(i), "営業", t] for i, t in enumerate(distinct_comments(300))])


def chunk(jobs: Queue, job_id: str, seq: int) -> JobChunk:
    with session_scope(jobs.sessions) as session:
        return session.get_one(JobChunk, (jobs.job(job_id).id, seq))


def claim_first_chunk(jobs: Queue, job_id: str, owner: str, lease_s: float) -> int | None:
    with session_scope(jobs.sessions) as session:
        return claim_chunk(session, job_pk=jobs.job(job_id).id, owner=owner, now=utcnow(), lease_s=lease_s)


def test_a_chunk_held_by_a_live_process_is_left_alone_and_taken_over_once_its_lease_runs_out(
    jobs: Queue, survey: Path
) -> None:
    job_id = jobs.create(survey)  # 300 rows: chunks 0, 1 and 2
    assert claim_first_chunk(jobs, job_id, A, lease_s=2.0) == 0
    running = run_job(jobs.context(Labelling()), job_id=job_id, owner=B)
    assert (running.status, running.done_rows) == ("running", 300 - CHUNK_ROWS)  # B did 1 and 2, not A's chunk
    with session_scope(jobs.sessions) as session:
        assert claimable_jobs(session, source="api", now=utcnow()) == []
    time.sleep(2.2)  # A stopped renewing: its lease runs out
    with session_scope(jobs.sessions) as session:
        assert claimable_jobs(session, source="api", now=utcnow()) == [job_id]
    done = run_job(jobs.context(Labelling()), job_id=job_id, owner=B)
    assert (done.status, done.done_rows, done.owner) == ("done", 300, None)
    assert jobs.stored(job_id) == 300
    assert jobs.chunks_by(job_id) == {B: 3}


def test_a_process_whose_chunk_was_taken_over_stores_nothing_of_it_and_does_not_fail_the_job(
    jobs: Queue, survey: Path
) -> None:
    job_id = jobs.create(survey)
    pause, paused = threading.Event(), threading.Event()
    slow = Labelling(pause=pause, paused=paused)
    results: list[Job] = []
    first = threading.Thread(target=lambda: results.append(run_job(jobs.context(slow), job_id=job_id, owner=A)))
    first.start()
    assert paused.wait(60), "A never reached its second chunk"
    assert chunk(jobs, job_id, 1).owner == A
    with session_scope(jobs.sessions) as session:  # A froze (a VM pause) and its lease ran out: B takes over
        session.execute(update(JobChunk).where(JobChunk.seq == 1).values(lease_expires_at=utcnow()))
    done = run_job(jobs.context(Labelling()), job_id=job_id, owner=B)
    pause.set()
    first.join(60)
    assert done.status == "done" and jobs.stored(job_id) == 300  # every row exactly once
    assert results and results[0].status != "failed"  # A stepped back; it did not mark B's job failed
    assert jobs.job(job_id).status == "done"
    assert jobs.chunks_by(job_id) == {A: 1, B: 2}


def test_a_chunk_whose_process_was_killed_on_this_machine_is_taken_over_at_once(jobs: Queue, survey: Path) -> None:
    job_id = jobs.create(survey)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = f"{socket.gethostname()[:60]}:{dead.stdout.strip()}:cccccc"
    assert [claim_first_chunk(jobs, job_id, gone, lease_s=600) for _ in range(3)] == [0, 1, 2]  # it held them all
    runner = JobRunner(jobs.settings, jobs.sessions, lambda: None)
    runner._scan()
    assert runner._queue.get_nowait() == job_id  # the scan finds it, though the lease runs for 10 minutes
    done = run_job(jobs.context(Labelling()), job_id=job_id)  # no wait for the lease
    assert done.status == "done" and jobs.stored(job_id) == 300


class Counting(Labelling):
    """Spends one LLM call per chunk (a token per comment), asks for review of every comment with 'review' in it, and
    takes a moment, so two runners interleave."""

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
        time.sleep(0.02)
        usage.add(Usage(calls=1, prompt_tokens=len(texts), completion_tokens=1, cost_usd=0.001))
        label = Classification("process", None, 0.9, True, "", "local")
        return [Outcome(label, ReviewCall(needed="review" in t, urgent=False)) for t in texts]


def test_two_processes_split_one_job_with_no_chunk_done_twice_and_the_counts_add_up(
    jobs: Queue, tmp_path: Path
) -> None:
    rows = [[str(i), "営業", t] for i, t in enumerate(distinct_comments(1200))]
    for i in range(0, 1200, 10):
        rows[i][2] = f"please review {i}"  # 120 need review
    for i in range(5, 1200, 100):
        rows[i][2] = ""  # 12 have no comment
    rows[7][2] = rows[8][2] = rows[9][2]  # 2 duplicates
    job_id = jobs.create(write_csv(tmp_path / "big.csv", rows))
    chunks = -(-1200 // CHUNK_ROWS)
    results: dict[str, Job] = {}

    def run(owner: str) -> None:
        results[owner] = run_job(jobs.context(Counting()), job_id=job_id, owner=owner)

    runners = [threading.Thread(target=run, args=(owner,)) for owner in (A, B)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(120)
    done = jobs.job(job_id)
    assert done.status == "done" and "done" in {r.status for r in results.values()}
    with session_scope(jobs.sessions) as session:
        indexes = session.scalars(select(JobRow.row_index).where(JobRow.job_id == done.id).order_by(JobRow.row_index))
        assert list(indexes) == list(range(1200))  # every row exactly once
    by = jobs.chunks_by(job_id)
    assert sum(by.values()) == chunks and by.get(A) and by.get(B), by  # both worked; each chunk done once
    assert (done.done_rows, done.error_rows, done.review_rows, done.unique_texts) == (1200, 12, 120, 1200 - 12 - 2)
    assert done.llm_calls == chunks and done.prompt_tokens == 1200 - 12 - 2 and done.completion_tokens == chunks
    assert round(done.cost_usd, 6) == round(0.001 * chunks, 6)


def test_a_cli_job_held_by_a_live_process_is_refused(jobs: Queue, survey: Path) -> None:
    with session_scope(jobs.sessions) as session:
        job = create_job(session, source="cli", path=survey, name=survey.name, options=JobOptions())
        assert claim(session, job_id=job.public_id, owner=A, now=utcnow(), lease_s=60)
    with pytest.raises(JobBusy, match="another process"):
        run_job(jobs.context(Labelling()), job_id=job.public_id, owner=B)
    assert jobs.stored(job.public_id) == 0
