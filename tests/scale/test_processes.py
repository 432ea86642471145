"""Several processes, one truth (issue 19): two `serve` processes and one `worker` on PostgreSQL, a Chroma server and
Redis, behind nginx. Real processes on loopback, all working on one job's chunks, killed with SIGKILL mid-chunk; small
leases so it takes seconds.

Each process loads the e5 embedder, so the test keeps to three of them and a small job (bounded to a few minutes)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from benchmarks.cluster import (
    NGINX,
    Cluster,
    Process,
    cluster_env,
    distinct_comments,
    wait_for_http,
    wait_until,
    write_csv,
)
from service.auth.service import add_user
from service.bootstrap import open_database
from service.config import Settings
from service.db import make_sessionmaker, session_scope
from service.jobs.models import CHUNK_ROWS, Job, JobChunk, JobRow
from service.jobs.repository import chunks_done_by
from service.review.models import ReviewItem
from service.triage.models import Question
from tests.conftest import make_settings
from tests.review.helpers import TRAINING

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
LEASE_S, SCAN_S = 3.0, 1.0
CHUNK_S = 60  # one chunk classified by a process sharing a loaded 2-core machine with two others
TAKEOVER_S = LEASE_S + SCAN_S + CHUNK_S  # lease + scan + the chunk the taking process is on
ROWS = CHUNK_ROWS * 8
WITHDRAWN = "研修は来月から始まります（撤回テスト用の文面）。[1]"
SEARCH_LIMIT, ASKS = 12, 100
COMMENT, SIMILAR = "研修の時間って残業代出るの？", "研修時間に残業代はつきますか？"


def redis_url() -> str:
    """A Redis database of its own, emptied, so counts left by an earlier run cannot reach this one's limits."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.fail("Redis is not running on 127.0.0.1:6379: .ci/system-deps starts it (redis-server)")
    url = "redis://127.0.0.1:6379/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def cluster(tmp_path: Path, database_url: str, indexed_settings: Settings) -> Iterator[dict[str, Process]]:
    assert os.path.exists(NGINX), "nginx is missing: .ci/system-deps installs it (apt-get install nginx-light)"
    running = Cluster(tmp_path, {})
    chroma = running.chroma(indexed_settings.chroma_path)  # the session's indexed knowledge base, served
    running.env = cluster_env(
        database_url=database_url,
        chroma_url=chroma.url,
        redis_url=redis_url(),
        NEMAWASHI_JOB_LEASE_S=str(LEASE_S),
        NEMAWASHI_JOB_SCAN_INTERVAL_S=str(SCAN_S),
        NEMAWASHI_ASK_RATE_LIMIT_PER_MINUTE="10000",
        NEMAWASHI_SEARCH_RATE_LIMIT_PER_MINUTE=str(SEARCH_LIMIT),
        NEMAWASHI_CLASSIFIER_SYNC_INTERVAL_S="2",
        NEMAWASHI_FAQ_MIN_SIMILARITY="1.0",  # questions are drafted (and reviewed), not answered from the FAQ
        NEMAWASHI_FAQ_AGREE_MIN_SIMILARITY="1.0",
        NEMAWASHI_RECONCILE_INTERVAL_S="5",
        NEMAWASHI_APPROVED_COLLECTION=f"approved-{tmp_path.name[-12:]}",
    )
    try:
        first, second, worker = running.serve("serve-1"), running.serve("serve-2"), running.worker("worker")
        for process in (first, second):
            wait_for_http(f"{process.url}/readyz", process=process.popen, seconds=600)
        wait_until("the worker is ready", lambda: "ready:" in running.log("worker"), seconds=600, every=1)
        proxy = running.nginx([first, second])
        yield {"serve-1": first, "serve-2": second, "worker": worker, "nginx": proxy}
    finally:
        running.stop_all()
        for name in ("serve-1", "serve-2", "worker", "nginx", "chroma"):  # shown when the test failed
            print(f"--- {name} ---\n{running.log(name)}")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_serve_processes_and_a_worker_behind_nginx_one_truth_through_kills(
    cluster: dict[str, Process], database_url: str, tmp_path: Path
) -> None:
    p = cluster
    engine = open_database(make_settings(tmp_path / "test", database_url=database_url))
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as session:
        _, token = add_user(session, name="sato", role="admin")
    auth = {"Authorization": f"Bearer {token}"}
    through_nginx = httpx.Client(base_url=p["nginx"].url, timeout=60)

    def ask_text(client: httpx.Client | str, question: str) -> dict[str, Any]:
        if isinstance(client, str):
            client = httpx.Client(base_url=client, timeout=60)
        response = client.post("/v1/ask", json={"question": question})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def ask(client: httpx.Client | str) -> dict[str, Any]:
        return ask_text(client, TRAINING)

    def item_of(public_id: str) -> int:
        with session_scope(sessions) as session:
            question = session.scalars(select(Question.id).where(Question.public_id == public_id)).one()
            return session.scalars(select(ReviewItem.id).where(ReviewItem.question_id == question)).one()

    def decide(url: str, item: int, **decision: Any) -> dict[str, Any]:
        version = httpx.get(f"{url}/v1/review/items/{item}", headers=auth, timeout=30).json()["item"]["version"]
        response = httpx.post(
            f"{url}/v1/review/items/{item}/decisions", headers=auth, json={**decision, "version": version}, timeout=60
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    # Approve on serve-1: both processes serve the approved text (one Chroma server, SQL checked first).
    item = item_of(ask(p["serve-1"].url)["id"])
    decide(p["serve-1"].url, item, action="edit", answer=WITHDRAWN)
    for url in (p["serve-1"].url, p["serve-2"].url):
        assert ask(url)["answer"].startswith(WITHDRAWN.removesuffix("[1]")), "the approval is not served everywhere"
    # Withdraw on serve-2: asked through nginx (both processes, round robin), never the withdrawn text again.
    decide(p["serve-2"].url, item, action="withdraw", reason="日程変更のため")
    answers = [ask(through_nginx) for _ in range(ASKS)]
    assert not [a for a in answers if WITHDRAWN.removesuffix("[1]") in a["answer"] or a["mode"] == "approved"]

    # The search limit is counted once across both processes (Redis): one client alternating between them gets
    # exactly SEARCH_LIMIT answers in the window, then 429s from either.
    statuses = [
        httpx.post(f"{p[name].url}/v1/search", json={"query": "研修"}, timeout=60).status_code
        for _ in range(SEARCH_LIMIT)
        for name in ("serve-1", "serve-2")
    ]
    assert (statuses.count(200), statuses.count(429)) == (SEARCH_LIMIT, SEARCH_LIMIT), statuses

    # A relabel made on serve-1 is used by serve-2 within 10 s (the classifier version lives in the database).
    assert ask_text(p["serve-2"].url, SIMILAR)["root_cause"]["primary"] == "job_fear"
    relabelled = ask_text(p["serve-1"].url, COMMENT)
    decide(p["serve-1"].url, item_of(relabelled["id"]), action="relabel", root_cause="cost")
    relabelled_at = time.monotonic()
    wait_until(
        "serve-2 uses the relabel",
        lambda: ask_text(p["serve-2"].url, SIMILAR)["root_cause"]["primary"] == "cost",
        seconds=10,
        every=0.5,
    )
    relabel_s = time.monotonic() - relabelled_at

    # A job uploaded to serve-1 runs there; serve-1 is killed mid-job, the worker takes over; the worker is killed,
    # serve-2 takes over. Every row exactly once, the job never failed, each takeover within lease + scan.
    survey = write_csv(
        tmp_path / "survey.csv", [[str(i + 1), "営業", t] for i, t in enumerate(distinct_comments(ROWS))]
    )
    with survey.open("rb") as handle:
        uploaded = httpx.post(
            f"{p['serve-1'].url}/v1/jobs/classify", headers=auth, files={"file": ("survey.csv", handle)}, timeout=120
        )
    assert uploaded.status_code == 202, uploaded.text
    job_id = uploaded.json()["id"]

    def job() -> Job:
        with session_scope(sessions) as session:
            return session.scalars(select(Job).where(Job.public_id == job_id)).one()

    def chunks() -> list[JobChunk]:
        with session_scope(sessions) as session:
            current = session.scalars(select(Job).where(Job.public_id == job_id)).one()
            assert current.status != "failed", current.message
            return list(session.scalars(select(JobChunk).where(JobChunk.job_id == current.id)))

    def working(process: Process) -> list[int]:
        """The chunk the process works on, once a chunk is stored (so it is mid-job)."""
        found = chunks()
        stored = any(c.done_at for c in found)
        return [c.seq for c in found if stored and f":{process.pid}:" in (c.owner or "")]

    def taken_by(seq: int, *processes: Process) -> bool:
        chunk = next(c for c in chunks() if c.seq == seq)
        return any(f":{process.pid}:" in f"{chunk.owner} {chunk.done_by}" for process in processes)

    # Every process works on the job, a chunk at a time. serve-1 is killed mid-chunk: its chunk is taken over once
    # its lease runs out and another process has finished the chunk it is on; then the worker is killed mid-chunk
    # and serve-2, the last one left, takes its chunk over.
    [seq] = wait_until("serve-1 works on a chunk", lambda: working(p["serve-1"]), seconds=180)
    os.kill(p["serve-1"].pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_until("serve-1's chunk is taken over", lambda: taken_by(seq, p["worker"], p["serve-2"]), seconds=TAKEOVER_S)
    first_takeover = time.monotonic() - killed
    [seq] = wait_until("the worker works on a chunk", lambda: working(p["worker"]), seconds=180)
    os.kill(p["worker"].pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_until("serve-2 takes the worker's chunk over", lambda: taken_by(seq, p["serve-2"]), seconds=TAKEOVER_S)
    second_takeover = time.monotonic() - killed
    wait_until("the job is done", lambda: job().status == "done", seconds=300, every=0.5)

    done = job()
    assert (done.done_rows, done.total_rows, done.message) == (ROWS, ROWS, None)
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(JobRow).where(JobRow.job_id == done.id)) == ROWS
    # The result through nginx (only serve-2 is left; it never saw the upload): every row once, in order.
    result = through_nginx.get(f"/v1/jobs/{job_id}/result", headers=auth)
    assert result.status_code == 200, result.text
    ids = [line.split(",")[0] for line in result.content.decode("utf-8-sig").splitlines()[1:]]
    assert ids == [str(i + 1) for i in range(ROWS)]
    with session_scope(sessions) as session:
        by = chunks_done_by(session, job_pk=done.id)
    assert sum(by.values()) == ROWS // CHUNK_ROWS and len(by) >= 2, by  # each chunk stored once, by several processes
    print(f"chunk taken over after kill -9: serve-1's {first_takeover:.1f}s, the worker's {second_takeover:.1f}s")
    print(f"relabel on serve-1 used by serve-2 after {relabel_s:.1f}s")
    through_nginx.close()
    engine.dispose()
