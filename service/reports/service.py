"""Objection statistics and the plan-feedback report, from the stored questions, answers, labels and feedback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.llm.client import ChatModel
from service.llm.prompts import Prompt
from service.privacy import redact
from service.reports.grouping import MAX_GROUPED, Grouper, most_common
from service.reports.records import NOT_SET, Record, load_records, weeks_between, zone_label
from service.reports.schemas import (
    CauseCount,
    CauseName,
    CauseSection,
    CitedEntry,
    ObjectionReport,
    PlanFeedbackReport,
    QuestionGroup,
    Rates,
    RecurringObjection,
    ReportQuery,
    WeekCount,
)
from service.reports.suggestions import llm_suggestions, rule_suggestions
from service.retrieval.embeddings import Embedder
from service.retrieval.models import KbDocument
from service.triage.taxonomy import Taxonomy

UNCLASSIFIED = "unclassified"
QUOTE_CHARS = 280


def objection_report(
    session: Session, *, query: ReportQuery, taxonomy: Taxonomy, embedder: Embedder | None, zone: ZoneInfo
) -> ObjectionReport:
    """Counts by root cause × department × week, rates, unanswered questions and recurring objections; days and
    weeks in zone."""
    records = load_records(session, query, zone)
    return build_objection_report(records, query=query, taxonomy=taxonomy, grouper=Grouper(embedder), zone=zone)


def plan_feedback_report(
    session: Session,
    *,
    query: ReportQuery,
    taxonomy: Taxonomy,
    embedder: Embedder | None,
    zone: ZoneInfo,
    llm: ChatModel | None = None,
    prompt: Prompt | None = None,
) -> PlanFeedbackReport:
    """Per root cause: what staff said, which entries answered it, what is missing, suggested changes."""
    records = load_records(session, query, zone)
    grouper = Grouper(embedder)
    overview = build_objection_report(records, query=query, taxonomy=taxonomy, grouper=grouper, zone=zone)
    documents = _documents(session, {d for r in records for d in r.cited_doc_ids()})
    sections = [
        _section(cause, [r for r in records if _cause(r) == cause.id], overview, grouper, documents)
        for cause in overview.root_causes
    ]
    sections.sort(key=lambda s: -s.questions)  # the biggest worry first; sort is stable for the rest
    report = PlanFeedbackReport(
        filters=query,
        timezone=overview.timezone,
        generated_at=overview.generated_at,
        empty=overview.empty,
        overview=overview,
        sections=sections,
        suggestions_by="rules",
        suggestions_model=None,
        documents={doc_id: title for doc_id, (title, _) in documents.items()},
    )
    _suggest(report, llm=llm, prompt=prompt, known_doc_ids=set(documents))
    return report


def build_objection_report(
    records: list[Record], *, query: ReportQuery, taxonomy: Taxonomy, grouper: Grouper, zone: ZoneInfo
) -> ObjectionReport:
    """The objection statistics of already loaded records."""
    causes = _cause_names(taxonomy, records)
    departments = Counter(r.department for r in records)
    weeks = weeks_between(records[0].week, records[-1].week) if records else []
    unanswered = [r for r in records if r.unanswered]
    recurring = [g for c in causes for g in _recurring([r for r in records if _cause(r) == c.id], grouper)]
    return ObjectionReport(
        filters=query,
        timezone=zone_label(zone),
        generated_at=datetime.now(UTC),
        empty=not records,
        root_causes=causes,
        weeks=weeks,
        departments=sorted(departments, key=lambda d: (d is None, -departments[d], d or "")),
        counts=_counts(records, [c.id for c in causes]),
        rates=_rates(records),
        unanswered=_unanswered_groups(unanswered, grouper),
        unanswered_questions=len(unanswered),
        recurring=sorted((g for g in recurring if g.count >= 2), key=lambda g: -g.count)[:10],
        grouping=grouper.method,
        grouped_limit=MAX_GROUPED,
    )


def quote(text: str) -> str:
    """Staff text fit to show: personal data redacted first, then shortened."""
    clean = " ".join(redact(text).split())
    return clean if len(clean) <= QUOTE_CHARS else clean[: QUOTE_CHARS - 1] + "…"


def _cause(record: Record) -> str:
    return record.root_cause or UNCLASSIFIED


def _cause_names(taxonomy: Taxonomy, records: Iterable[Record]) -> list[CauseName]:
    names = [CauseName(id=label.id, ja=label.name.ja, en=label.name.en) for label in taxonomy.labels]
    known = {n.id for n in names}
    for extra in dict.fromkeys(_cause(r) for r in records if _cause(r) not in known):
        # A label since removed from the taxonomy, or a question stored without one: still counted.
        ja, en = ("未分類", "Unclassified") if extra == UNCLASSIFIED else (extra, extra)
        names.append(CauseName(id=extra, ja=ja, en=en))
    return names


def _counts(records: list[Record], cause_order: list[str]) -> list[CauseCount]:
    questions: Counter[tuple[str, str, str | None]] = Counter()
    objections: Counter[tuple[str, str, str | None]] = Counter()
    for record in records:
        key = (record.week, _cause(record), record.department)
        questions[key] += 1
        objections[key] += record.is_objection
    ordered = sorted(questions, key=lambda k: (k[0], cause_order.index(k[1]), k[2] is None, k[2] or ""))
    return [
        CauseCount(week=w, root_cause=c, department=d, questions=questions[(w, c, d)], objections=objections[(w, c, d)])
        for w, c, d in ordered
    ]


def _unchecked(records: list[Record]) -> int:
    return sum(r.is_objection and not r.stance_checked for r in records)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rates(records: list[Record]) -> Rates:
    modes = Counter(r.mode for r in records if r.mode)
    statuses = Counter(r.review_status for r in records if r.review_status)
    reviewed = sum(n for status, n in statuses.items() if status != "pending")  # approved, rejected or withdrawn
    approved = statuses.get("approved", 0)
    feedback = [f for r in records for f in r.feedback]
    helpful = sum(f.helpful for f in feedback)
    answered = sum(modes.values())
    return Rates(
        questions=len(records),
        objections=sum(r.is_objection for r in records),
        unchecked_objections=_unchecked(records),
        answer_modes=dict(modes),
        abstained=modes["abstain"],
        abstention_rate=_rate(modes["abstain"], answered),
        review_statuses=dict(statuses),
        reviewed=reviewed,
        approved=approved,
        approval_rate=_rate(approved, reviewed),
        feedback=len(feedback),
        helpful=helpful,
        not_helpful=len(feedback) - helpful,
        helpful_rate=_rate(helpful, len(feedback)),
        reused=modes["approved"],
    )


def _groups(records: list[Record], grouper: Grouper) -> list[list[Record]]:
    newest = records[-MAX_GROUPED:]
    return [[newest[i] for i in group] for group in grouper.group([r.text for r in newest])]


def _variants(group: list[Record], limit: int = 3) -> list[str]:
    shown = dict.fromkeys(quote(r.text) for r in group)
    return list(shown)[1 : limit + 1]


def _departments(group: Iterable[Record]) -> list[str]:
    counts = Counter(r.department or NOT_SET for r in group)
    return [d for d, _ in counts.most_common()]


def _unanswered_groups(records: list[Record], grouper: Grouper, limit: int = 20) -> list[QuestionGroup]:
    groups = []
    for group in _groups(records, grouper)[:limit]:
        comments = [quote(f.comment) for r in group for f in r.feedback if not f.helpful and f.comment]
        groups.append(
            QuestionGroup(
                representative=quote(_leader(group).text),
                count=len(group),
                abstained=sum(r.abstained for r in group),
                not_helpful=sum(r.not_helpful for r in group),
                root_cause=most_common([r.root_cause for r in group]),
                departments=_departments(group),
                variants=_variants(group),
                comments=list(dict.fromkeys(comments))[:5],
                question_ids=[r.public_id for r in group],
                last_seen=max(r.created_at for r in group),
            )
        )
    return groups


def _leader(group: list[Record]) -> Record:
    """The most common wording in the group (the first asked on a tie)."""
    counts = Counter(quote(r.text) for r in group)
    return max(group, key=lambda r: counts[quote(r.text)])


def _recurring(
    records: list[Record], grouper: Grouper, *, limit: int = 10, objections_only: bool = True
) -> list[RecurringObjection]:
    chosen = [r for r in records if r.is_objection or not objections_only]
    return [
        RecurringObjection(
            root_cause=_cause(group[0]),
            count=len(group),
            representative=quote(_leader(group).text),
            variants=_variants(group),
            departments=_departments(group),
            last_seen=max(r.created_at for r in group),
        )
        for group in _groups(chosen, grouper)[:limit]
    ]


def _documents(session: Session, doc_ids: set[str]) -> dict[str, tuple[str, str]]:
    if not doc_ids:
        return {}
    stmt = select(KbDocument.doc_id, KbDocument.title, KbDocument.type).where(KbDocument.doc_id.in_(sorted(doc_ids)))
    return {doc_id: (title, type_) for doc_id, title, type_ in session.execute(stmt)}


def _cited(records: list[Record], documents: dict[str, tuple[str, str]], limit: int = 10) -> list[CitedEntry]:
    questions: Counter[str] = Counter()
    unhelpful: Counter[str] = Counter()
    titles: dict[str, str] = {}
    for record in records:
        for citation in (c for c in record.citations if isinstance(c, dict)):
            titles.setdefault(str(citation.get("doc_id")), str(citation.get("title") or citation.get("doc_id")))
        for doc_id in record.cited_doc_ids():
            questions[doc_id] += 1
            unhelpful[doc_id] += record.not_helpful
    return [
        CitedEntry(
            doc_id=doc_id,
            title=documents.get(doc_id, (titles.get(doc_id, doc_id), ""))[0],
            type=documents.get(doc_id, ("", "doc"))[1],
            url=f"/kb/{doc_id}",
            questions=n,
            not_helpful=unhelpful[doc_id],
        )
        for doc_id, n in questions.most_common(limit)
    ]


def _section(
    cause: CauseName,
    records: list[Record],
    overview: ObjectionReport,
    grouper: Grouper,
    documents: dict[str, tuple[str, str]],
) -> CauseSection:
    weekly = Counter(r.week for r in records)
    return CauseSection(
        cause=cause,
        questions=len(records),
        objections=sum(r.is_objection for r in records),
        unchecked_objections=_unchecked(records),
        share=_rate(len(records), overview.rates.questions),
        weekly=[WeekCount(week=w, questions=weekly[w]) for w in overview.weeks],
        departments=dict(Counter(r.department or NOT_SET for r in records).most_common()),
        quotes=_recurring(records, grouper, limit=5, objections_only=False),
        answered_by=_cited(records, documents),
        abstained=sum(r.abstained for r in records),
        not_helpful=sum(r.not_helpful for r in records),
        missing=_unanswered_groups([r for r in records if r.unanswered], grouper, limit=5),
        suggestions=[],
    )


def _suggest(
    report: PlanFeedbackReport, *, llm: ChatModel | None, prompt: Prompt | None, known_doc_ids: set[str]
) -> None:
    """LLM suggestions when an LLM is configured and answers sensibly; rule-based ones otherwise."""
    if report.empty:
        return
    if llm is not None and prompt is not None:
        drafted, fallback, detail = llm_suggestions(llm, prompt, report.sections, known_doc_ids=known_doc_ids)
        if drafted is not None:
            for section in report.sections:
                section.suggestions = drafted.get(section.cause.id, [])
            report.suggestions_by, report.suggestions_model = "llm", llm.model
            return
        report.suggestions_fallback, report.suggestions_fallback_detail = fallback, detail
    for section in report.sections:
        section.suggestions = rule_suggestions(section)
