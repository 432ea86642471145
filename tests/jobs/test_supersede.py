"""A job started on a changed input replaces the old one instead of leaving it `running` for ever, and a re-run does
not queue the comments reviewers already have again (issue 19.10)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.bootstrap import open_database
from service.db import make_sessionmaker, session_scope, utcnow
from service.jobs.engine import Outcome
from service.jobs.repository import claim
from service.jobs.service import JobOptions, create_job, run_job
from service.llm.client import Usage
from service.review.models import ReviewItem
from service.triage.cascade import ReviewCall
from service.triage.classifier import Classification
from tests.conftest import make_settings
from tests.jobs.helpers import distinct_comments, write_csv
from tests.jobs.test_leases import Labelling, Queue


@pytest.fixture
def jobs(tmp_path: Path, database_url: str) -> Iterator[Queue]:
    settings = make_settings(tmp_path, database_url=database_url, job_lease_s=2.0)
    engine = open_database(settings)
    yield Queue(settings, make_sessionmaker(engine))
    engine.dispose()


class Doubtful:
    """Labels every comment with low confidence: each one needs a reviewer."""

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
        label = Classification("process", None, 0.3, True, "", "local")
        return [Outcome(label, ReviewCall(needed=True, urgent=False)) for _ in texts]


def survey(path: Path, comments: list[str]) -> Path:
    return write_csv(path, [[str(i + 1), "営業", t] for i, t in enumerate(comments)])


def cli_job(jobs: Queue, path: Path, out: Path) -> str:
    with session_scope(jobs.sessions) as session:
        job = create_job(session, source="cli", path=path, name=path.name, options=JobOptions(), output_path=out)
        return job.public_id


def review_items(jobs: Queue) -> int:
    with session_scope(jobs.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(ReviewItem)) or 0)


def test_a_cli_rerun_with_a_changed_file_supersedes_the_interrupted_run(jobs: Queue, tmp_path: Path) -> None:
    out = tmp_path / "survey.classified.csv"
    path = survey(tmp_path / "survey.csv", distinct_comments(50))
    old = cli_job(jobs, path, out)
    with session_scope(jobs.sessions) as session:  # the first run was killed mid-way: running, lease long gone
        assert claim(session, job_id=old, owner="host-a:1:aaaaaa", now=utcnow(), lease_s=2)
    path = survey(path, distinct_comments(60))  # the file was edited, the same command run again
    new = cli_job(jobs, path, out)
    replaced = jobs.job(old)
    assert replaced.status == "failed" and replaced.message and f"superseded by job {new}" in replaced.message
    assert run_job(jobs.context(Labelling()), job_id=new).status == "done"
    assert jobs.job(old).status == "failed"


def test_an_upload_of_the_same_name_with_other_bytes_supersedes_the_old_one_and_its_process_stops(
    jobs: Queue,
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    old = jobs.create(survey(tmp_path / "a" / "survey.csv", distinct_comments(300)))
    pause, paused = threading.Event(), threading.Event()
    results = []
    worker = threading.Thread(
        target=lambda: results.append(run_job(jobs.context(Labelling(pause=pause, paused=paused)), job_id=old))
    )
    worker.start()
    assert paused.wait(60), "the old job never reached its second chunk"
    (tmp_path / "b").mkdir()
    new = jobs.create(survey(tmp_path / "b" / "survey.csv", distinct_comments(310)))
    pause.set()
    worker.join(60)
    assert results and results[0].status == "failed" and f"superseded by job {new}" in (results[0].message or "")
    assert jobs.stored(old) == 128  # it stored nothing after it was replaced
    unrelated = jobs.create(survey(tmp_path / "other.csv", distinct_comments(5)))
    assert jobs.job(new).status == "queued" and jobs.job(unrelated).status == "queued"


def test_a_rerun_reuses_the_review_questions_of_the_earlier_job(jobs: Queue, tmp_path: Path) -> None:
    comments = distinct_comments(20)
    first = jobs.create(survey(tmp_path / "first.csv", comments))
    assert run_job(jobs.context(Doubtful()), job_id=first).review_rows == 20
    assert review_items(jobs) == 20
    # The same comments again (spacing and width differ), plus five new ones, in another file.
    changed = [f"  {c.replace('(', '（').replace(')', '）')} " for c in comments]
    changed += [f"new comment {i}" for i in range(5)]
    second = jobs.create(survey(tmp_path / "second.csv", changed))
    done = run_job(jobs.context(Doubtful()), job_id=second)
    assert done.review_rows == 25
    assert review_items(jobs) == 25  # only the five new comments were queued
