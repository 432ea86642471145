"""Stopping processes (issue 19.9): a `nemawashi worker` stopped with SIGTERM mid-job exits after the chunk it is on,
holding none, and the next worker finishes the job with every row once; a `serve` still indexing stops at once."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from benchmarks.cluster import NEMAWASHI, Cluster, distinct_comments, free_port, wait_for_http, wait_until, write_csv
from service.bootstrap import open_database
from service.config import Settings
from service.db import make_sessionmaker, session_scope
from service.jobs.models import CHUNK_ROWS, Job, JobChunk, JobRow
from service.jobs.repository import chunks_done_by
from service.jobs.service import JobOptions, create_job
from tests.conftest import KNOWLEDGE, make_settings
from tests.jobs.helpers import cli_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROWS = CHUNK_ROWS * 6
STOP_BOUND_S = 60  # a stop waits for the chunk in progress only (seconds here), never for the job


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_worker_stopped_mid_job_exits_holding_no_chunk_and_the_next_worker_finishes_the_job(
    tmp_path: Path, database_url: str, indexed_settings: Settings
) -> None:
    # A 10-minute lease: the job can only finish in this test if the stopped worker gave its chunks up.
    env = cli_env(tmp_path, database_url, NEMAWASHI_JOB_LEASE_S="600", NEMAWASHI_JOB_SCAN_INTERVAL_S="1")
    cluster = Cluster(tmp_path, {k: v for k, v in env.items() if k != "NEMAWASHI_DATA_DIR"})
    for name in ("worker-1", "worker-2"):  # an embedded store serves one process: each worker gets a copy
        shutil.copytree(
            indexed_settings.chroma_path, tmp_path / name / "chroma", ignore=shutil.ignore_patterns("*.lock")
        )
    engine = open_database(make_settings(tmp_path / "test", database_url=database_url))
    sessions = make_sessionmaker(engine)
    survey = write_csv(tmp_path / "survey.csv", [[str(i), "営業", t] for i, t in enumerate(distinct_comments(ROWS))])

    def chunks() -> list[JobChunk]:
        with session_scope(sessions) as session:
            return list(session.scalars(select(JobChunk).order_by(JobChunk.seq)))

    try:
        first = cluster.worker("worker-1")
        wait_until("worker-1 is ready", lambda: "ready:" in cluster.log("worker-1"), seconds=600, every=1)
        with session_scope(sessions) as session:
            job = create_job(session, source="api", path=survey, name=survey.name, options=JobOptions())
        mine = f":{first.pid}:"
        wait_until(
            "worker-1 stores a chunk and works on the next",
            lambda: any(c.done_at for c in chunks()) and any(mine in (c.owner or "") for c in chunks()),
            seconds=300,
        )
        first.popen.send_signal(signal.SIGTERM)
        try:
            first.popen.wait(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker-1 did not exit within {STOP_BOUND_S}s of SIGTERM:\n{cluster.log('worker-1')}")
        assert not [c.seq for c in chunks() if mine in (c.owner or "")], "worker-1 left a chunk claimed"
        stopped = sum(1 for c in chunks() if c.done_at)
        assert 0 < stopped < len(chunks()), "stopped mid-job"

        cluster.worker("worker-2")  # the restart: it finishes the job
        with session_scope(sessions) as session:
            pk = session.scalars(select(Job.id).where(Job.public_id == job.public_id)).one()

        def status() -> str:
            with session_scope(sessions) as session:
                current = session.get_one(Job, pk)
                assert current.status != "failed", current.message
                return current.status

        wait_until("the job is done", lambda: status() == "done", seconds=600, every=1)
        with session_scope(sessions) as session:
            indexes = session.scalars(select(JobRow.row_index).where(JobRow.job_id == pk).order_by(JobRow.row_index))
            assert list(indexes) == list(range(ROWS))  # every row exactly once
            by = chunks_done_by(session, job_pk=pk)
        assert sorted(by.values()) == sorted([stopped, len(chunks()) - stopped]), by  # each chunk once, by either
    finally:
        cluster.stop_all()
        engine.dispose()
        for name in ("worker-1", "worker-2"):
            print(f"--- {name} ---\n{cluster.log(name)}")


def test_serve_stops_at_once_on_sigterm_while_it_is_still_indexing(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"  # the sample knowledge base and many more pages: a first indexing of minutes
    shutil.copytree(KNOWLEDGE, knowledge)
    for n in range(300):
        page = "\n\n".join(
            f"## 手順 {n}-{i}\n\n{c} 担当者は確認してから進めます。" for i, c in enumerate(distinct_comments(12))
        )
        (knowledge / f"extra-{n:03}.md").write_text(f"# 追加資料 {n}\n\n{page}\n", encoding="utf-8")
    env = cli_env(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'data' / 'nemawashi.db'}",
        NEMAWASHI_KNOWLEDGE_DIR=str(knowledge),
        NEMAWASHI_SHUTDOWN_GRACE_S="600",  # what a stop waited for the loader before
    )
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen(
            [NEMAWASHI, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=serve, seconds=300)
        readiness = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert readiness.status_code == 503 and "loading" in readiness.json()["reason"], readiness.text
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("serve did not exit within 30s of SIGTERM while indexing")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
