"""What approval publishes: the reused answer, its FAQ page at /kb/approved-<id>, and Markdown files for git."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import event
from sqlalchemy.orm import Session

from service.logging import get_logger
from service.privacy import redact
from service.retrieval import service as retrieval
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.documents import ROOT_CAUSES
from service.review import repository
from service.review.models import ReviewItem
from service.triage.models import Question

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


def published_text(answer: str, citations: list[dict[str, Any]], lang: str) -> str:
    """The answer /v1/ask returns verbatim: the approved text, with its [n] sources spelled out (reused answers
    carry no citation list of their own)."""
    sources = cited(answer, citations)
    if not sources:
        return answer
    head = "出典" if lang == "ja" else "Sources"
    return f"{answer}\n\n{head}:\n" + "\n".join(f"[{c['n']}] {c['title']} ({c['url']})" for c in sources)


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


def publish_decision(
    session: Session,
    *,
    approved: ApprovedAnswers,
    primary: ReviewItem,
    applied: list[int],
    was_approved: bool,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """Publish or withdraw the approved answer of the primary item and the group items the decision applied to: the
    FAQ page in this transaction, the answer /v1/ask reuses only once it commits (a rolled-back approval must never
    be served). Returns the published and the withdrawn answer ids."""
    deferred: list[Callable[[], None]] = []
    items = [item for item in (session.get(ReviewItem, i) for i in applied) if item is not None]
    question = session.get(Question, primary.question_id)
    assert question is not None
    if primary.status == "approved" and primary.final_answer is not None:
        published = _publish(session, approved, primary, question, items, deferred, now)
        withdrawn: list[str] = []
    elif was_approved and primary.status != "approved":
        published, withdrawn = [], [answer_id(item.id) for item in items]
        deferred += [functools.partial(approved.withdraw, answer) for answer in withdrawn]
        delete_page(session, item_id=primary.id)
    else:
        published, withdrawn = [], []
    if deferred:
        event.listen(session, "after_commit", functools.partial(_run_after_commit, deferred), once=True)
    return published, withdrawn


def _publish(
    session: Session,
    approved: ApprovedAnswers,
    primary: ReviewItem,
    question: Question,
    items: list[ReviewItem],
    deferred: list[Callable[[], None]],
    now: datetime,
) -> list[str]:
    assert primary.final_answer is not None
    answer = repository.answer_of(session, primary.question_id)
    citations = list(answer.citations) if answer else []
    text = published_text(primary.final_answer, citations, question.lang)
    published = []
    for item in items:
        if item.status == "approved":
            asked = session.get(Question, item.question_id)
            assert asked is not None
            published.append(answer_id(item.id))
            deferred.append(  # plain values: after the commit the rows are expired
                functools.partial(
                    approved.publish, answer_id=published[-1], question=asked.text, answer=text, lang=asked.lang
                )
            )
    label = repository.classification_of(session, question.id)
    entry = FaqEntry(
        item_id=primary.id,
        question=question.text,
        answer=primary.final_answer,
        lang=question.lang,
        root_cause=primary.root_cause or (label.primary if label else None),
        citations=citations,
        updated=now.date(),
    )
    save_page(session, entry)
    return published


def _run_after_commit(operations: list[Callable[[], None]], _session: Session) -> None:
    for operation in operations:
        try:
            operation()
        except Exception:  # the decision is committed; say so loudly rather than fail the reviewer's request
            log.exception("review.publish_failed")


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
