"""Jobs inside the serving process (or a worker): one background thread with its own sessions. It works on the jobs
submitted here and, every job_scan_interval_s, on any unfinished job with a chunk no live process holds (one queued by
another process, one that other processes work on too, or one whose process died and whose lease ran out), so
several processes share one queue, and each job's chunks, in the database."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope, utcnow
from service.jobs.chunks import died_here
from service.jobs.engine import TriageClassifier
from service.jobs.repository import chunk_holders, claimable_jobs
from service.jobs.service import JobBusy, JobContext, fail_job, get_job, job_options, run_job
from service.logging import get_logger
from service.triage.service import Triage

log = get_logger("jobs.runner")
POLL_S = 0.2


class JobRunner:
    """Works on API jobs one at a time, in order, a chunk at a time; a stop releases the job after its chunk."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], triage: Callable[[], Triage | None]
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._triage = triage
        self._queue: queue.Queue[str] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobs-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the chunk it is on, and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._queued:
                return
            self._queued.add(job_id)
        self._queue.put(job_id)

    def _loop(self) -> None:
        triage = self._wait_for_triage()
        if triage is None:
            return
        scanned = float("-inf")
        while not self._stop.is_set():
            if time.monotonic() - scanned >= self._settings.job_scan_interval_s:
                self._scan()
                scanned = time.monotonic()
            try:
                job_id = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            self._run(triage, job_id)
            with self._lock:
                self._queued.discard(job_id)

    def _scan(self) -> None:
        """Queue the unfinished jobs with a chunk no live process holds (or one a process that died here holds)."""
        try:
            with session_scope(self._sessions) as session:
                found = claimable_jobs(session, source="api", now=utcnow())
                found += [job for job, owner in chunk_holders(session, source="api") if died_here(owner)]
        except OperationalError as exc:  # the database is away: the next scan tries again
            log.warning("jobs.scan_failed", error=type(exc).__name__)
            return
        for job_id in found:
            self.submit(job_id)

    def _wait_for_triage(self) -> Triage | None:
        """The pipeline, once the app has trained the classifier (None if stopped first)."""
        while not self._stop.is_set():
            triage = self._triage()
            if triage is not None:
                return triage
            self._stop.wait(POLL_S)
        return None

    def _run(self, triage: Triage, job_id: str) -> None:
        try:
            with session_scope(self._sessions) as session:
                suggest = job_options(get_job(session, job_id=job_id)).suggest
            classifier = TriageClassifier(triage, self._sessions, suggest=suggest)
            run_job(JobContext(self._settings, self._sessions, classifier), job_id=job_id, stop=self._stop)
        except JobBusy:
            log.info("jobs.held_elsewhere", job=job_id)  # another live process runs it (a CLI job)
        except OperationalError as exc:  # the database went away mid-job: the lease runs out and a scan resumes it
            log.warning("jobs.interrupted", job=job_id, error=type(exc).__name__)
        except Exception as exc:  # the thread must outlive any one job, and the job must not look busy forever
            log.exception("jobs.runner_error", job=job_id)
            with contextlib.suppress(Exception):  # e.g. the database is gone too
                fail_job(self._sessions, job_id, f"unexpected error ({type(exc).__name__}): see the server log")


def start_job_runner(app: FastAPI) -> JobRunner:
    """Start the app's job thread (idempotent); it resumes unfinished jobs once the pipeline is ready."""
    existing: JobRunner | None = getattr(app.state, "job_runner", None)
    if existing is not None:
        return existing
    runner = JobRunner(app.state.settings, app.state.sessionmaker, lambda: getattr(app.state, "triage", None))
    app.state.job_runner = runner
    runner.start()
    return runner


def stop_job_runner(app: FastAPI) -> None:
    """Stop the app's job thread; the job it was on continues at the next start."""
    runner: JobRunner | None = getattr(app.state, "job_runner", None)
    if runner is not None:
        runner.stop()
        app.state.job_runner = None
