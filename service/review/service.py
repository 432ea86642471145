"""The review queue: drafts enter as pending items; reviewers list, read and decide them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.auth.service import Reviewer
from service.config import Settings
from service.db import session_scope
from service.errors import BadInput
from service.notify.service import Outbox
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.service import KnowledgeIndex
from service.review import notices, publishing, repository
from service.review.decisions import decide, item_state
from service.review.grouping import QuestionSpace, cluster, question_vectors, similarity
from service.review.models import AnswerReuse, QuestionVector, ReviewItem, ReviewStatus
from service.review.phrasings import phrasings_of
from service.review.repository import QueueRow
from service.review.schemas import (
    Approve,
    AuditEntry,
    CitedPassage,
    ClassificationOut,
    DraftOut,
    Edit,
    FeedbackOut,
    GroupMember,
    ItemDetail,
    ItemPage,
    ItemQuery,
    ItemSummary,
    QuestionOut,
    SimilarItem,
)
from service.triage.models import Question, QuestionSource
from service.triage.queue import ServedAnswer

DECIDED = ["approved", "rejected", "withdrawn"]
SIMILAR_LIMIT = 5


def enqueue(
    session: Session,
    *,
    question_id: int,
    urgent: bool,
    vector: np.ndarray | None = None,
    embedder: str | None = None,
) -> ReviewItem:
    """Put a stored draft in front of reviewers; flagged drafts and abstentions come first.

    vector (with the embedder's name) is the question's synonym-expanded e5 query vector, when the caller has it:
    kept for grouping near-duplicates, so the queue need not embed the question again."""
    item = ReviewItem(
        question_id=question_id, status=ReviewStatus.pending, priority="high" if urgent else "normal", version=1
    )
    session.add(item)
    if vector is not None and embedder:
        unit = np.asarray(vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(unit))
        session.add(QuestionVector(question_id=question_id, embedder=embedder, vector=(unit / (norm or 1.0)).tobytes()))
    session.flush()
    return item


class SqlReviewQueue:
    """The review queue as the pipeline sees it (triage.queue.ReviewQueue): stored drafts become pending items.

    With settings, a new abstention or flagged draft also gets outbox rows for the team's channels, in the
    pipeline's transaction (without: bulk jobs and tests, no notifications)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.outbox = Outbox.from_settings(settings) if settings else None

    def enqueue(
        self,
        session: Session,
        *,
        question_id: int,
        urgent: bool,
        vector: np.ndarray | None = None,
        embedder: str | None = None,
    ) -> ReviewItem:
        item = enqueue(session, question_id=question_id, urgent=urgent, vector=vector, embedder=embedder)
        notices.enqueued(session, self.outbox, item=item)
        return item

    def approved_answer(self, session: Session, answer_id: str) -> ServedAnswer | None:
        return publishing.served_answer(session, answer_id)

    def record_reuse(self, session: Session, *, answer_id: str, question_id: int) -> None:
        item_id = publishing.item_id_of(answer_id)
        if item_id is not None:
            session.add(AnswerReuse(item_id=item_id, question_id=question_id))
            session.flush()


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def group_rows(session: Session, rows: list[QueueRow], space: QuestionSpace, threshold: float) -> list[list[QueueRow]]:
    """Near-duplicate questions in the same language, grouped; each group starts with the first asked."""
    vectors = question_vectors(session, space, ((r.question.id, r.question.text) for r in rows))
    groups: list[list[QueueRow]] = []
    for lang in sorted({r.question.lang for r in rows}):
        same = [r for r in rows if r.question.lang == lang]
        groups += [[same[i] for i in g] for g in cluster([vectors[r.question.id] for r in same], threshold=threshold)]
    return groups


def _stamp(moment: datetime) -> float:
    return aware(moment).timestamp()


def _sort_key(sort: str, group: list[QueueRow]) -> tuple[float, float]:
    first, latest = _stamp(group[0].question.created_at), max(_stamp(r.question.created_at) for r in group)
    if sort == "lowest_confidence":
        confidences = [r.confidence for r in group if r.confidence is not None]
        return (min(confidences) if confidences else 2.0, first)
    if sort == "most_asked":
        return (-len(group), -latest)
    if sort == "newest":
        return (-latest, 0.0)
    if sort == "oldest":
        return (first, 0.0)
    return (0.0 if any(r.item.priority == "high" for r in group) else 1.0, first)


def _summary(group: list[QueueRow]) -> ItemSummary:
    row = group[0]
    item, question = row.item, row.question
    return ItemSummary(
        id=item.id,
        version=item.version,
        status=item.status,
        priority="high" if any(r.item.priority == "high" for r in group) else item.priority,
        question=question.text,
        lang=question.lang,
        source=question.source,
        department=question.department,
        created_at=aware(question.created_at),
        mode=row.mode,
        flags=row.flags,
        root_cause=row.root_cause,
        classifier_root_cause=row.classifier_root_cause,
        confidence=row.confidence,
        assignee=item.assignee,
        updated_by=item.updated_by,
        updated_at=aware(item.updated_at),
        group_size=len(group),
        group_ids=[r.item.id for r in group],
    )


def list_items(session: Session, *, query: ItemQuery, space: QuestionSpace | None, threshold: float) -> ItemPage:
    """One page of the queue: filtered in SQL, grouped by question similarity, sorted, paginated."""
    rows = repository.queue_rows(session, query)
    grouped = query.group and space is not None
    groups = group_rows(session, rows, space, threshold) if grouped and space else [[r] for r in rows]
    groups.sort(key=lambda g: _sort_key(query.sort, g))
    start = (query.page - 1) * query.per_page
    return ItemPage(
        items=[_summary(g) for g in groups[start : start + query.per_page]],
        total=len(groups),
        page=query.page,
        per_page=query.per_page,
        sort=query.sort,
        grouped=grouped,
    )


def neighbours(
    session: Session, *, query: ItemQuery, item_id: int, space: QuestionSpace | None, threshold: float
) -> tuple[int | None, int | None]:
    """The items listed before and after item_id under the same filters and sort (for j/k in the reviewer UI)."""
    everything = query.model_copy(update={"page": 1, "per_page": repository.MAX_ROWS})
    ids = [s.id for s in list_items(session, query=everything, space=space, threshold=threshold).items]
    if item_id not in ids:
        return (None, ids[0] if ids else None)
    at = ids.index(item_id)
    return (ids[at - 1] if at > 0 else None, ids[at + 1] if at + 1 < len(ids) else None)


def _group_of(
    session: Session, row: QueueRow, space: QuestionSpace, threshold: float, vector: np.ndarray
) -> list[GroupMember]:
    if row.item.status != "pending":
        return []
    pending = repository.queue_rows(session, ItemQuery(status=["pending"], group=False))
    vectors = question_vectors(session, space, ((r.question.id, r.question.text) for r in pending))
    for group in group_rows(session, pending, space, threshold):
        if row.item.id in [r.item.id for r in group]:
            return [
                GroupMember(
                    id=r.item.id,
                    version=r.item.version,
                    question=r.question.text,
                    similarity=similarity(vector, vectors[r.question.id]),
                    created_at=aware(r.question.created_at),
                )
                for r in group
                if r.item.id != row.item.id
            ]
    return []


def _similar(
    session: Session, row: QueueRow, space: QuestionSpace, settings: Settings, vector: np.ndarray
) -> list[SimilarItem]:
    decided = [
        r for r in repository.queue_rows(session, ItemQuery(status=DECIDED, group=False)) if r.item.id != row.item.id
    ]
    vectors = question_vectors(session, space, ((r.question.id, r.question.text) for r in decided))
    scored = sorted(((similarity(vector, vectors[r.question.id]), r) for r in decided), key=lambda p: -p[0])
    return [
        SimilarItem(
            id=r.item.id,
            question=r.question.text,
            similarity=score,
            status=r.item.status,
            answer=r.item.final_answer or _draft_text(session, r),
            reason=r.item.reason,
            decided_by=r.item.decided_by,
            decided_at=aware(r.item.decided_at) if r.item.decided_at else None,
        )
        for score, r in scored[:SIMILAR_LIMIT]
        if score >= settings.review_similar_min
    ]


def _draft_text(session: Session, row: QueueRow) -> str | None:
    answer = repository.answer_of(session, row.question.id)
    return answer.text if answer else None


def _citations(raw: list[dict[str, object]], knowledge: KnowledgeIndex) -> list[CitedPassage]:
    passages = []
    for citation in raw:
        chunk = knowledge.chunks.get(str(citation.get("chunk_id", "")))
        passages.append(CitedPassage.model_validate({**citation, "passage": chunk.text if chunk else None}))
    return passages


def check_extract_confirmed(session: Session, *, item_id: int, decision: object) -> None:
    """Approving an excerpt draft as it is needs confirm_extract: its quotes were never written as an answer, and an
    approved answer is reused word for word (an edit is the other way out)."""
    if not isinstance(decision, Approve) or decision.confirm_extract:
        return
    item = repository.get_item(session, item_id)
    answer = repository.answer_of(session, item.question_id)
    if answer is not None and answer.mode == "extractive" and not item.final_answer:
        raise BadInput(
            "this draft is only excerpts from the documents, which nobody wrote as an answer: edit it into an answer "
            '(action "edit") or approve with "confirm_extract": true'
        )


def item_detail(session: Session, *, item_id: int, knowledge: KnowledgeIndex, settings: Settings) -> ItemDetail:
    """Everything a reviewer needs to decide: question, draft, cited passages, label, feedback, group, history."""
    item = repository.get_item(session, item_id)
    [row] = repository.queue_rows(session, ItemQuery(group=False), only_ids=[item.id])
    question, answer = row.question, repository.answer_of(session, row.question.id)
    label = repository.classification_of(session, question.id)
    space = QuestionSpace.of(knowledge)
    vector = question_vectors(session, space, [(question.id, question.text)])[question.id]
    return ItemDetail(
        item=item_state(session, item),
        question=QuestionOut(
            public_id=question.public_id,
            text=question.text,
            lang=question.lang,
            source=question.source,
            department=question.department,
            asker=question.asker,
            created_at=aware(question.created_at),
            conversation_id=question.conversation_id,
            standalone_text=question.standalone_text,
        ),
        draft=DraftOut.model_validate(answer, from_attributes=True) if answer else None,
        citations=_citations(list(answer.citations) if answer else [], knowledge),
        classification=ClassificationOut.model_validate(label, from_attributes=True) if label else None,
        root_cause=row.root_cause,
        feedback=[
            FeedbackOut(helpful=f.helpful, comment=f.comment, created_at=aware(f.created_at))
            for f in repository.feedback(session, question.id)
        ],
        group=_group_of(session, row, space, settings.review_group_similarity, vector),
        similar=_similar(session, row, space, settings, vector),
        audit=audit_log(session, item_id=item.id),
        reused=repository.reuse_count(session, item.id),
        phrasings=phrasings_of(session, item.id),
    )


def audit_log(session: Session, *, item_id: int) -> list[AuditEntry]:
    """Every decision attempt on the item, oldest first, applied or refused."""
    repository.get_item(session, item_id)
    return [
        AuditEntry.model_validate(event, from_attributes=True).model_copy(
            update={"created_at": aware(event.created_at)}
        )
        for event in repository.events(session, item_id)
    ]


def record_approved(
    sessions: sessionmaker[Session],
    *,
    approved: ApprovedAnswers,
    labels: list[str],
    question: str,
    answer: str,
    lang: str,
    alternates: Sequence[str] = (),
    source: QuestionSource = QuestionSource.eval,
    actor: str = "import",
) -> int:
    """Store a question (and other phrasings of it) as review items and approve them with one answer, exactly as a
    reviewer's edit-and-approve of a group would: the rows in SQL, then the publication. For the eval suite and
    imports of answers approved elsewhere. Returns the primary item's id."""
    with session_scope(sessions) as session:
        ids = []
        for text in dict.fromkeys([question, *alternates]):
            row = Question(public_id=str(uuid.uuid4()), text=text, lang=lang, source=source)
            session.add(row)
            session.flush()
            ids.append(enqueue(session, question_id=row.id, urgent=False).id)
        decision = Edit(action="edit", answer=answer, version=1, group=ids[1:])
        decide(
            session,
            sessions=sessions,
            item_id=ids[0],
            decision=decision,
            reviewer=Reviewer(name=actor, role="admin"),
            approved=approved,
            labels=labels,
        )
    return ids[0]
