"""What approval publishes: the reused answer, its FAQ page at /kb/approved-<id>, and Markdown files for git."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from service.privacy import redact
from service.retrieval.documents import ROOT_CAUSES
from service.retrieval.models import KbDocument
from service.review import repository

PAGE_PREFIX = "approved-"
_MARKER = re.compile(r"\[(\d{1,2})\]")
_TITLE_MAX = 200


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
    """The FAQ page at /kb/approved-<id>; its path marks it as coming from a review, not a knowledge file."""
    row = session.get(KbDocument, entry.doc_id) or KbDocument(doc_id=entry.doc_id)
    row.title, row.type, row.lang = faq_title(entry.question), "faq", entry.lang
    row.root_causes, row.updated, row.path = entry.root_causes, entry.updated, f"review:items/{entry.item_id}"
    row.body = entry.body
    row.content_hash = hashlib.sha256(row.body.encode()).hexdigest()
    row.chunks, row.indexed_at = 0, datetime.now(UTC)
    session.add(row)
    session.flush()


def delete_page(session: Session, *, item_id: int) -> None:
    row = session.get(KbDocument, answer_id(item_id))
    if row is not None:
        session.delete(row)
        session.flush()


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
