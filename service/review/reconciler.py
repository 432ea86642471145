"""The reconciler: the approved-answers collection brought in line with SQL (main.py runs it at start and then
periodically, service/periodic.py)."""

from __future__ import annotations

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
