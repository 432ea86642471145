"""`nemawashi worker`: a process that runs bulk jobs and the catch-up tasks, with no HTTP.

Any number of workers (and serve processes) share one queue in the database: each claims a job's chunks one at a time
with a lease, so several work on one job at once, and takes over the chunks of processes that died (see runner.py).
Run workers beside the serve processes to keep classification CPU away from the processes answering questions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from service.bootstrap import build_triage, open_clients
from service.config import Settings
from service.errors import NotReady
from service.jobs.runner import JobRunner
from service.logging import get_logger
from service.periodic import Periodic
from service.retrieval.uploads import knowledge_mark
from service.review.decisions import sync_classifier
from service.review.reconciler import catch_up_tasks

log = get_logger("jobs.worker")
STOP_GRACE_S = 60.0  # how long a stop waits for the chunk in progress before the process exits anyway


def run_worker(settings: Settings, stop: threading.Event, *, on_ready: Callable[[], None] | None = None) -> None:
    """Run jobs until stop is set, then finish the chunk in progress and return (claiming no other).

    on_ready is called once the pipeline is built and the runner is looking for jobs (the embedder is loaded)."""
    clients = open_clients(settings)
    tasks: list[Periodic] = []
    runner: JobRunner | None = None
    try:
        if not clients.knowledge.store.exists():
            raise NotReady("the knowledge base is not indexed yet: run `nemawashi ingest` (or start `nemawashi serve`)")
        sessions = clients.sessionmaker
        loaded_at = knowledge_mark(sessions)  # before loading: a later change is reloaded by the sync
        clients.knowledge.refresh()
        triage = build_triage(settings, clients)
        sync_classifier(sessions, classifier=triage.classifier.local)
        tasks = catch_up_tasks(
            sessions, triage, settings, loaded_at=loaded_at
        )  # the same catch-up as every serve process
        runner = JobRunner(settings, sessions, lambda: triage)
        runner.start()
        log.info("worker.ready", scan_interval_s=settings.job_scan_interval_s, lease_s=settings.job_lease_s)
        if on_ready is not None:
            on_ready()
        while not stop.wait(1.0):  # a timed wait: the signal handler runs between waits
            pass
        log.info("worker.stopping")
    finally:
        if runner is not None:
            runner.stop(timeout=max(STOP_GRACE_S, settings.job_lease_s))
        for task in tasks:
            task.stop()
        clients.close()
    log.info("worker.stopped")
