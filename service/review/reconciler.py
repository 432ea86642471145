"""The reconciler: the approved-answers collection brought in line with SQL, at start and then periodically."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.logging import get_logger
from service.retrieval.approved import ApprovedAnswers
from service.review import repository
from service.review.publishing import item_id_of, publication_of

log = get_logger("review")


@dataclass
class Reconciled:
    published: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)


def reconcile(sessions: sessionmaker[Session], approved: ApprovedAnswers) -> Reconciled:
    """Bring the approved-answers collection in line with SQL: publish what is approved but missing or at another
    version, withdraw what is there but no longer approved. Cheap when nothing differs (one SQL query, one read of
    the collection's metadata), so it runs at start and periodically; a publication lost to a Chroma outage or a
    crash between commit and publication is made good here."""
    with session_scope(sessions) as session:
        wanted = {
            p.answer_id: p
            for p in (publication_of(session, item) for item in repository.approved_items(session))
            if p is not None
        }
    stored = approved.versions()
    done = Reconciled()
    for answer, publication in wanted.items():
        if stored.get(answer) != publication.version:
            approved.publish(
                answer_id=answer,
                question=publication.question,
                answer=publication.answer,
                lang=publication.lang,
                version=publication.version,
            )
            done.published.append(answer)
    for answer in stored:
        if answer not in wanted and item_id_of(answer) is not None:
            approved.withdraw(answer)
            done.withdrawn.append(answer)
    if done.published or done.withdrawn:
        log.info("review.reconciled", published=len(done.published), withdrawn=len(done.withdrawn))
    return done


class Reconciler:
    """Runs reconcile once at start and then every interval_s seconds (0: only at start) on a daemon thread.

    Each process runs its own: the work is idempotent (publications carry the item version) and cheap when nothing
    differs, so several processes on one database and one Chroma server need no coordination."""

    def __init__(self, sessions: sessionmaker[Session], approved: ApprovedAnswers, *, interval_s: float) -> None:
        self._sessions, self._approved, self._interval = sessions, approved, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="approved-reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                reconcile(self._sessions, self._approved)
            except Exception as exc:  # the database or the store is down: try again next round
                log.warning("review.reconcile_failed", error=f"{type(exc).__name__}: {exc}")
            if self._interval <= 0 or self._stop.wait(self._interval):
                return
