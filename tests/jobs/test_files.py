"""Uploads and results readable by every process (issue 19.4): the uploaded file is stored with its job in the
database, so another process (another machine, another data dir) runs the job and serves its results even after
the process that took the upload is gone with its files."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import inspect

from alembic import command
from service.bootstrap import open_database
from service.config import PROJECT_ROOT
from service.db import make_engine, make_sessionmaker, migrate
from service.jobs.delivery import result_file, submit_upload
from service.jobs.service import JobContext, JobOptions, run_job
from tests.conftest import make_settings
from tests.jobs.helpers import distinct_comments, write_csv
from tests.jobs.test_leases import Labelling, Queue

ROWS = 300


@pytest.fixture
def two_processes(tmp_path: Path, database_url: str) -> Iterator[tuple[Queue, Queue]]:
    """Two processes on one database, each with a data dir of its own (two machines)."""
    opened = []
    for name in ("a", "b"):
        settings = make_settings(tmp_path / name, database_url=database_url, job_lease_s=2.0)
        engine = open_database(settings)
        opened.append((Queue(settings, make_sessionmaker(engine)), engine))
    yield opened[0][0], opened[1][0]
    for _, engine in opened:
        engine.dispose()


def upload(process: Queue, path: Path) -> str:
    stream = io.BytesIO(path.read_bytes())
    job = submit_upload(process.settings, process.sessions, filename=path.name, stream=stream, options=JobOptions())
    return job.public_id


def test_a_job_uploaded_to_one_process_is_run_and_served_by_another_after_the_first_lost_its_files(
    two_processes: tuple[Queue, Queue], tmp_path: Path
) -> None:
    a, b = two_processes
    rows = [[str(i + 1), "営業", t] for i, t in enumerate(distinct_comments(ROWS))]
    survey = write_csv(tmp_path / "survey.csv", rows)
    job_id = upload(a, survey)
    shutil.rmtree(a.settings.data_dir / "jobs")  # A restarted on a fresh disk, or B is on another machine
    done = run_job(JobContext(b.settings, b.sessions, Labelling()), job_id=job_id, owner="host-b:2:bbbbbb")
    assert (done.status, done.done_rows, done.message) == ("done", ROWS, None)
    for process in (a, b):  # results from either process: every row once, in order
        lines = result_file(process.settings, process.sessions, job_id=job_id, fmt="csv").read_text("utf-8-sig")
        rows = lines.splitlines()[1:]
        assert [row.split(",")[0] for row in rows] == [str(i + 1) for i in range(ROWS)]
        assert all(row.split(",")[3] == "process" for row in rows)


def test_a_job_whose_file_is_nowhere_fails_with_a_message_that_says_what_to_do(
    two_processes: tuple[Queue, Queue], tmp_path: Path
) -> None:
    a, b = two_processes
    survey = write_csv(tmp_path / "old.csv", [[str(i + 1), "営業", t] for i, t in enumerate(distinct_comments(10))])
    job_id = a.create(survey)  # a job made before uploads were stored in the database
    survey.unlink()
    failed = run_job(JobContext(b.settings, b.sessions, Labelling()), job_id=job_id)
    assert failed.status == "failed" and "upload the file again" in (failed.message or "")


def test_0011_adds_job_files_and_downgrades_cleanly(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    try:
        migrate(engine)
        assert "job_files" in inspect(engine).get_table_names()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
        assert "job_files" not in inspect(engine).get_table_names()
        migrate(engine)
        assert "job_files" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
