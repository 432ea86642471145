"""What approval publishes: the reused answer, its FAQ page at /kb/approved-<id>, and Markdown files for git."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.logging import get_logger
from service.privacy import redact
from service.retrieval import service as retrieval
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.documents import ROOT_CAUSES
from service.review import repository
from service.review.models import ReviewItem
from service.triage.models import Question
from service.triage.queue import ServedAnswer

PAGE_PREFIX = "approved-"
ORIGIN = "review"  # the origin of the FAQ pages approvals put in the knowledge base
_MARKER = re.compile(r"\[(\d{1,2})\]")
_TITLE_MAX = 200
log = get_logger("review")


def answer_id(item_id: int) -> str:
    """The id of an item's approved answer: in the approved-answers collection, on /kb and as the export file."""
    return f"{PAGE_PREFIX}{item_id}"


def kb_url(item_id: int) -> str:
    return f"/kb/{answer_id(item_id)}"


def cited(text: str, citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The citations the text still refers to as [n], in order of n."""
    numbers = {int(n) for n in _MARKER.findall(text)}
    return sorted((c for c in citations if c.get("n") in numbers), key=lambda c: int(c["n"]))


def faq_title(question: str) -> str:
    """The question on one line, personal data redacted: it becomes a public FAQ title."""
    title = " ".join(redact(question).split())
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


def faq_body(question: str, answer: str, citations: list[dict[str, Any]], lang: str) -> str:
    """Markdown in the knowledge base's FAQ form: the question as a heading, the answer, its sources as links."""
    body = f"## Q: {faq_title(question)}\n\n{answer.strip()}\n"
    sources = cited(answer, citations)
    if sources:
        head = "出典" if lang == "ja" else "Sources"
        links = "\n".join(f"- [{c['n']}] [{c['title']}]({c['url']})" for c in sources)
        body += f"\n**{head}**\n\n{links}\n"
    return body


@dataclass(frozen=True)
class FaqEntry:
    """An approved answer as a knowledge document."""

    item_id: int
    question: str
    answer: str
    lang: str
    root_cause: str | None
    citations: list[dict[str, Any]]
    updated: date

    @property
    def doc_id(self) -> str:
        return answer_id(self.item_id)

    @property
    def root_causes(self) -> list[str]:
        return [self.root_cause] if self.root_cause in ROOT_CAUSES else []

    @property
    def body(self) -> str:
        return faq_body(self.question, self.answer, self.citations, self.lang)

    def front_matter(self) -> dict[str, Any]:
        return {
            "id": self.doc_id,
            "type": "faq",
            "title": faq_title(self.question),
            "lang": self.lang,
            "root_causes": self.root_causes,
            "updated": self.updated,
        }

    def markdown(self) -> str:
        meta = yaml.safe_dump(self.front_matter(), allow_unicode=True, sort_keys=False, width=1000)
        return f"---\n{meta}---\n{self.body}"


def save_page(session: Session, entry: FaqEntry) -> None:
    """The FAQ page at /kb/approved-<id>, owned by review: ingesting the knowledge folder leaves it alone."""
    page = retrieval.Page(
        doc_id=entry.doc_id,
        origin=ORIGIN,
        title=faq_title(entry.question),
        type="faq",
        lang=entry.lang,
        root_causes=entry.root_causes,
        updated=entry.updated,
        body=entry.body,
        path=f"review:items/{entry.item_id}",
    )
    retrieval.put_page(session, page)


def delete_page(session: Session, *, item_id: int) -> None:
    retrieval.remove_page(session, doc_id=answer_id(item_id))


@dataclass(frozen=True)
class Publication:
    """What the approved-answers collection should hold for one approved item, as SQL (the truth) says."""

    answer_id: str
    question: str  # the item's own question: the phrasing new questions are matched against
    answer: str  # the text /v1/ask returns: the approved answer as written, its sources as [n]
    lang: str
    version: int  # the item's version: a publication never overwrites a newer one
    citations: list[dict[str, Any]] = field(default_factory=list)  # the sources its [n] refer to, as links


def publication_of(session: Session, item: ReviewItem | None) -> Publication | None:
    """The item's publication while it is approved for reuse with a text of its own or its group's; None otherwise
    (a reply meant for its asker only is approved but not published)."""
    if item is None or item.status != "approved" or item.final_answer is None or not item.reuse:
        return None
    source = (session.get(ReviewItem, item.answered_by) if item.answered_by else None) or item
    if source.status != "approved":  # a member never outlives its answer (withdrawing takes members along anyway)
        return None
    asked, source_question = session.get(Question, item.question_id), session.get(Question, source.question_id)
    if asked is None or source_question is None:
        return None
    answer = repository.answer_of(session, source.question_id)
    sources = cited(item.final_answer, list(answer.citations) if answer else [])
    return Publication(answer_id(item.id), asked.text, item.final_answer, asked.lang, item.version, sources)


def item_id_of(answer: str) -> int | None:
    """The review item an approved-answer id belongs to; None for ids review did not publish."""
    number = answer.removeprefix(PAGE_PREFIX)
    return int(number) if answer.startswith(PAGE_PREFIX) and number.isdigit() and len(number) < 19 else None


def publish_decision(
    session: Session,
    *,
    sessions: sessionmaker[Session],
    approved: ApprovedAnswers,
    primary: ReviewItem,
    applied: list[int],
    was_approved: bool,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """Publish or withdraw the approved answer of the primary item and the group items the decision applied to: the
    FAQ page in this transaction, the answer /v1/ask reuses only once it commits (a rolled-back approval must never
    be served). Returns the published and the withdrawn answer ids.

    After the commit the collection is brought in line with what SQL then says about these items (sync): an
    approval and a withdrawal committed in quick succession, by this process or another, end as SQL ends. What
    cannot be written then is left in session.info["publish_pending"] for the caller and the reconciler."""
    items = [item for item in (session.get(ReviewItem, i) for i in applied) if item is not None]
    question = session.get(Question, primary.question_id)
    assert question is not None
    if primary.status == "approved" and primary.final_answer is not None and primary.reuse:
        published = [answer_id(item.id) for item in items if item.status == "approved"]
        withdrawn: list[str] = []
        save_page(session, _entry(session, primary, question, now))
    elif was_approved:  # withdrawn or rejected, or approved again for its asker only
        published, withdrawn = [], [answer_id(item.id) for item in items]
        delete_page(session, item_id=primary.id)
    else:
        published, withdrawn = [], []
    if published or withdrawn:
        publish_after_commit(session, sessions, approved, [item.id for item in items])
    return published, withdrawn


def publish_after_commit(
    session: Session, sessions: sessionmaker[Session], approved: ApprovedAnswers, item_ids: list[int]
) -> None:
    """Bring the collection in line with SQL for these items once the session commits (never before: a rolled-back
    approval must never be served); what cannot be written is left in session.info["publish_pending"]."""
    event.listen(session, "after_commit", functools.partial(_after_commit, sessions, approved, item_ids), once=True)


def _entry(session: Session, primary: ReviewItem, question: Question, now: datetime) -> FaqEntry:
    assert primary.final_answer is not None
    answer = repository.answer_of(session, primary.question_id)
    label = repository.classification_of(session, question.id)
    return FaqEntry(
        item_id=primary.id,
        question=question.text,
        answer=primary.final_answer,
        lang=question.lang,
        root_cause=primary.root_cause or (label.primary if label else None),
        citations=list(answer.citations) if answer else [],
        updated=now.date(),
    )


def _after_commit(
    sessions: sessionmaker[Session], approved: ApprovedAnswers, item_ids: list[int], session: Session
) -> None:
    session.info["publish_pending"] = sync(sessions, approved, item_ids)


def sync(sessions: sessionmaker[Session], approved: ApprovedAnswers, item_ids: list[int]) -> list[str]:
    """Make the approved-answers collection say what SQL says now about these items: publish the approved ones
    (never over a newer version), withdraw the others. Returns the answer ids it could not update: the decision is
    committed, so a failure is logged and left to the reconciler rather than failing the reviewer's request."""
    with session_scope(sessions) as session:
        wanted = {
            item_id: (publication_of(session, item), item.version if item else None)
            for item_id, item in ((i, session.get(ReviewItem, i)) for i in item_ids)
        }
    pending = []
    for item_id, (publication, version) in wanted.items():
        try:
            if publication is not None:
                approved.publish(
                    answer_id=publication.answer_id,
                    question=publication.question,
                    answer=publication.answer,
                    lang=publication.lang,
                    version=publication.version,
                )
            else:
                approved.withdraw(answer_id(item_id), version=version)
        except Exception:
            log.exception("review.publish_failed", answer=answer_id(item_id))
            pending.append(answer_id(item_id))
    return pending


def served_answer(session: Session, answer: str) -> ServedAnswer | None:
    """The text and citations /v1/ask may serve for an approved-answer id the vector store matched: what SQL says
    now, or None when the item is no longer approved (withdrawn or rejected since; the store has not caught up)."""
    item_id = item_id_of(answer)
    publication = publication_of(session, session.get(ReviewItem, item_id)) if item_id is not None else None
    return ServedAnswer(publication.answer, publication.citations) if publication else None


def approved_entries(session: Session) -> list[FaqEntry]:
    """Every approved answer that carries its own text, oldest first."""
    entries = []
    for item, question, label, answer in repository.approved_primaries(session):
        decided = item.decided_at or item.updated_at
        entries.append(
            FaqEntry(
                item_id=item.id,
                question=question.text,
                answer=item.final_answer or "",
                lang=question.lang,
                root_cause=item.root_cause or (label.primary if label else None),
                citations=list(answer.citations) if answer else [],
                updated=decided.date(),
            )
        )
    return entries


@dataclass
class ExportReport:
    directory: str
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def export(entries: list[FaqEntry], directory: Path) -> ExportReport:
    """Write one Markdown file per entry; rewrite only what changed and remove files of withdrawn answers, so the
    folder can be committed to git and indexed by `nemawashi ingest`."""
    directory.mkdir(parents=True, exist_ok=True)
    report = ExportReport(str(directory))
    keep = set()
    for entry in entries:
        path = directory / f"{entry.doc_id}.md"
        keep.add(path.name)
        text = entry.markdown()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            report.unchanged.append(path.name)
            continue
        path.write_text(text, encoding="utf-8")
        report.written.append(path.name)
    for stale in sorted(directory.glob(f"{PAGE_PREFIX}*.md")):
        if stale.name not in keep:
            stale.unlink()
            report.removed.append(stale.name)
    return report
