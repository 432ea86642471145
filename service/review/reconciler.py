"""Catching up with the database: the approved-answers collection brought in line with SQL, relabels learnt, the
knowledge index (and the FAQ index) reloaded after another process's uploads and deletions, and the daily digest
written, at start and then periodically in every serve and worker process (catch_up_tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope, utcnow
from service.logging import get_logger
from service.notify.service import Outbox
from service.periodic import Periodic
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.uploads import Indexing, KnowledgeSync
from service.review import repository
from service.review.decisions import sync_classifier
from service.review.notices import daily_digest
from service.review.publishing import item_id_of, publication_of
from service.triage.answering import build_answering, in_scope_examples
from service.triage.service import Triage

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


def _reload_faq(triage: Triage, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """An uploaded FAQ file answers FAQ-first in every process, its questions in scope; a deleted one no longer."""
    in_scope = in_scope_examples(triage.classifier.taxonomy)
    triage.faq, triage.scope = build_answering(settings, triage.knowledge, in_scope=in_scope, sessions=sessions)
    log.info("faq.reloaded", entries=len(triage.faq.entries))


DIGEST_CHECK_S = 600.0  # how often a process checks whether today's digest is due (written once a day)


def catch_up_tasks(
    sessions: sessionmaker[Session], triage: Triage, settings: Settings, *, loaded_at: tuple[int, int, str] | None
) -> list[Periodic]:
    """Start what keeps this process in line with the database and the other processes; stop them on shutdown.
    The database is the truth about approved answers and relabels; each task is idempotent across processes."""
    outbox = Outbox.from_settings(settings)
    return [
        Periodic(
            "approved-reconciler",
            lambda: reconcile(sessions, triage.approved),
            interval_s=settings.reconcile_interval_s,
        ).start(),
        Periodic(
            "classifier-sync",
            lambda: sync_classifier(sessions, classifier=triage.classifier.local),
            interval_s=settings.classifier_sync_interval_s,
        ).start(),
        Periodic(
            "knowledge-sync",
            KnowledgeSync(
                sessions,
                Indexing.from_settings(settings, triage.knowledge),
                shared_store=bool(settings.chroma_url),
                on_change=lambda: _reload_faq(triage, settings, sessions),
                mark=loaded_at,  # the knowledge mark read before this process loaded its index
            ),
            interval_s=settings.knowledge_sync_interval_s,
        ).start(),
        Periodic(
            "daily-digest",
            lambda: daily_digest(sessions, outbox, settings, now=utcnow()),
            interval_s=DIGEST_CHECK_S,
        ).start(),
    ]
