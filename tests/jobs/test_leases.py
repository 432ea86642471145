"""Job ownership across processes (issue 19.3): a job is claimed with a lease, renewed while worked on, taken over
only once its owner stopped renewing it, and rows are stored by the current owner only."""

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
from service.jobs.models import Job, JobRow
from service.jobs.repository import claim, claimable_jobs
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


def test_a_job_held_by_a_live_process_is_refused_and_taken_over_once_its_lease_runs_out(
    jobs: Queue, survey: Path
) -> None:
    job_id = jobs.create(survey)
    with session_scope(jobs.sessions) as session:
        assert claim(session, job_id=job_id, owner=A, now=utcnow(), lease_s=2.0)
    with pytest.raises(JobBusy, match="another process"):
        run_job(jobs.context(Labelling()), job_id=job_id, owner=B)
    with session_scope(jobs.sessions) as session:
        assert claimable_jobs(session, source="api", now=utcnow()) == []
    time.sleep(2.2)  # A stopped renewing: its lease runs out
    with session_scope(jobs.sessions) as session:
        assert claimable_jobs(session, source="api", now=utcnow()) == [job_id]
    done = run_job(jobs.context(Labelling()), job_id=job_id, owner=B)
    assert (done.status, done.done_rows, done.owner) == ("done", 300, None)
    assert jobs.stored(job_id) == 300


def test_a_process_whose_job_was_taken_over_stores_nothing_more_and_does_not_fail_it(jobs: Queue, survey: Path) -> None:
    job_id = jobs.create(survey)
    pause, paused = threading.Event(), threading.Event()
    slow = Labelling(pause=pause, paused=paused)
    results: list[Job] = []
    first = threading.Thread(target=lambda: results.append(run_job(jobs.context(slow), job_id=job_id, owner=A)))
    first.start()
    assert paused.wait(60), "A never reached its second chunk"
    with session_scope(jobs.sessions) as session:  # A froze (a VM pause) and its lease ran out: B takes over
        session.execute(update(Job).where(Job.public_id == job_id).values(lease_expires_at=utcnow()))
        assert claim(session, job_id=job_id, owner=B, now=utcnow(), lease_s=2.0)
    done = run_job(jobs.context(Labelling()), job_id=job_id, owner=B)
    pause.set()
    first.join(60)
    assert done.status == "done" and jobs.stored(job_id) == 300  # every row exactly once
    assert results and results[0].status != "failed"  # A stepped back; it did not mark B's job failed
    assert jobs.job(job_id).status == "done"


def test_a_job_whose_process_was_killed_on_this_machine_is_taken_over_at_once(jobs: Queue, survey: Path) -> None:
    job_id = jobs.create(survey)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()[:60]
    with session_scope(jobs.sessions) as session:
        assert claim(session, job_id=job_id, owner=f"{host}:{dead.stdout.strip()}:cccccc", now=utcnow(), lease_s=600)
    done = run_job(jobs.context(Labelling()), job_id=job_id)  # no wait for the 10-minute lease
    assert done.status == "done" and jobs.stored(job_id) == 300
