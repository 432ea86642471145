"""Decisions on review items: optimistic concurrency, the audit log, idempotent retries (publishing.py publishes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.auth.service import Reviewer, active_names
from service.db import session_scope, utcnow
from service.errors import BadInput, Conflict, problem
from service.logging import get_logger
from service.notify.service import Outbox
from service.retrieval.approved import ApprovedAnswers
from service.review import notices, publishing, repository
from service.review.models import ReviewItem, ReviewStatus
from service.review.schemas import (
    Assign,
    Decision,
    DecisionResult,
    Edit,
    ItemState,
    Relabel,
    ReviewProblem,
)
from service.triage.classifier import LocalClassifier
from service.triage.models import Question

log = get_logger("review")

# What each action may start from; anything else is refused with a reason (the version was current, so not a 409).
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "approve": ("pending", "rejected", "withdrawn"),
    "edit": ("pending", "approved", "rejected", "withdrawn"),
    "reject": ("pending", "approved"),
    "withdraw": ("approved",),
    "relabel": ("pending", "approved", "rejected", "withdrawn"),
    "assign": ("pending", "approved", "rejected", "withdrawn"),
}
STATUS_CHANGES = ("approve", "edit", "reject", "withdraw")


class StaleDecision(Conflict):
    """A decision made on an old version: refused with 409; the attempt is in the audit log (its own transaction)."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def item_state(session: Session, item: ReviewItem) -> ItemState:
    """The item's reviewable state, with what /v1/ask returns for it while approved."""
    publication = publishing.publication_of(session, item)
    published = publication.answer if publication else None
    url = publishing.kb_url(item.answered_by or item.id) if publication else None
    return ItemState(
        id=item.id,
        version=item.version,
        status=item.status,
        priority=item.priority,
        assignee=item.assignee,
        root_cause=item.root_cause,
        is_objection=item.is_objection,
        final_answer=item.final_answer,
        published_answer=published,
        kb_url=url,
        reason=item.reason,
        answered_by=item.answered_by,
        updated_by=item.updated_by,
        updated_at=_aware(item.updated_at),
        decided_by=item.decided_by,
        decided_at=_aware(item.decided_at) if item.decided_at else None,
    )


@dataclass
class _Run:
    """One decision being applied: who, when, and what it touched."""

    session: Session
    decision: Decision
    reviewer: Reviewer
    now: datetime
    applied: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def _request_hash(item_id: int, decision: Decision) -> str:
    return hashlib.sha256(f"{item_id}:{decision.model_dump_json()}".encode()).hexdigest()


def _replay(session: Session, *, reviewer: Reviewer, key: str, request_hash: str) -> DecisionResult | None:
    stored = repository.idempotent(session, actor=reviewer.name, key=key)
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise BadInput(
            f"Idempotency-Key {key!r} was already used for a different decision: send a new key for a new decision",
            detail=problem(ReviewProblem.idempotency_key_reused, idempotency_key=key, item_id=stored.item_id),
        )
    return DecisionResult.model_validate(stored.response).model_copy(update={"replayed": True})


def _check(session: Session, item: ReviewItem, decision: Decision, labels: list[str]) -> None:
    """Refuse a decision that cannot apply to the item as it is (BadInput naming why)."""
    if item.status not in ALLOWED_FROM[decision.action]:
        raise BadInput(
            f"cannot {decision.action} item {item.id}: it is {item.status}",
            detail=problem(
                ReviewProblem.not_allowed_from,
                status=item.status,
                allowed_from=list(ALLOWED_FROM[decision.action]),
                action=decision.action,
                id=item.id,
            ),
        )
    if decision.action == "approve":
        answer = repository.answer_of(session, item.question_id)
        if answer is None or answer.mode == "abstain" or not answer.text.strip():
            raise BadInput(
                f"item {item.id} has no draft to approve: write the answer and approve it with edit",
                detail=problem(ReviewProblem.no_draft, id=item.id),
            )
    if isinstance(decision, Relabel) and decision.root_cause is not None and decision.root_cause not in labels:
        raise BadInput(
            f"unknown root cause {decision.root_cause!r}: use one of {', '.join(labels)}",
            detail=problem(ReviewProblem.unknown_root_cause, root_cause=decision.root_cause, labels=labels),
        )
    if isinstance(decision, Assign) and decision.assignee and decision.assignee not in active_names(session):
        raise BadInput(
            f"cannot assign to {decision.assignee!r}: there is no active reviewer of that name",
            detail=problem(ReviewProblem.unknown_assignee, assignee=decision.assignee),
        )


def _stale(run: _Run, sessions: sessionmaker[Session], item: ReviewItem) -> StaleDecision:
    """Log the refused attempt in its own short transaction and name who changed the item and when.

    The request's transaction is rolled back first: it holds nothing worth keeping, and on SQLite its failed
    compare-and-set holds the write lock the audit entry needs."""
    run.session.rollback()
    repository.reload(run.session, item)
    changed_at = _aware(item.updated_at)
    who = item.updated_by or "the system"
    with session_scope(sessions) as audit:
        repository.add_event(
            audit,
            item_id=item.id,
            actor=run.reviewer.name,
            action=run.decision.action,
            outcome="conflict",
            version=run.decision.version,
            before={"version": item.version},
            after=run.decision.model_dump(exclude={"version", "group", "action"}),
            note=f"refused: {who} changed the item at {changed_at.isoformat(timespec='seconds')}",
            created_at=run.now,
        )
    return StaleDecision(
        f"item {item.id} was changed by {who} at {changed_at.isoformat(timespec='seconds')} "
        f"(it is now version {item.version}, your decision was made on version {run.decision.version}): "
        "reload it and decide again",
        detail={
            "id": item.id,
            "your_version": run.decision.version,
            "current_version": item.version,
            "changed_by": who,
            "changed_at": changed_at.isoformat(),
            "status": item.status,
        },
    )


def _change(
    item: ReviewItem, decision: Decision, *, text: str | None, primary_id: int | None, run: _Run
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply the decision to one item; returns the audit log's before and after."""
    action = decision.action
    before: dict[str, Any]
    after: dict[str, Any]
    if action in ("approve", "edit"):
        before = {"status": item.status, "answer": item.final_answer}
        item.status, item.final_answer, item.reason, item.answered_by = ReviewStatus.approved, text, None, primary_id
        after = {"status": item.status, "answer": text}
    elif action in ("reject", "withdraw"):
        before = {"status": item.status}
        item.status = ReviewStatus.rejected if action == "reject" else ReviewStatus.withdrawn
        item.reason = getattr(decision, "reason", None)
        item.reply = (getattr(decision, "reply", None) or "").strip() or None  # public, to the asker's follow-up
        after = {"status": item.status, "reason": item.reason}
    elif isinstance(decision, Relabel):
        before, after = {}, {}
        if decision.root_cause is not None:
            before["root_cause"], after["root_cause"] = item.root_cause, decision.root_cause
            item.root_cause = decision.root_cause
        if decision.is_objection is not None and decision.is_objection != item.is_objection:
            before["is_objection"], item.is_objection = item.is_objection, decision.is_objection
            after["is_objection"] = item.is_objection
    else:
        assert isinstance(decision, Assign)
        before, item.assignee = {"assignee": item.assignee}, decision.assignee
        after = {"assignee": item.assignee}
    if action in STATUS_CHANGES:
        item.decided_by, item.decided_at = run.reviewer.name, run.now
    return before, after


def _apply(run: _Run, item: ReviewItem, *, text: str | None, primary_id: int | None, note: str | None) -> None:
    before, after = _change(item, run.decision, text=text, primary_id=primary_id, run=run)
    run.session.flush()
    repository.add_event(
        run.session,
        item_id=item.id,
        actor=run.reviewer.name,
        action=run.decision.action,
        outcome="applied",
        version=item.version - 1,
        before=before,
        after=after,
        note=note,
        created_at=run.now,
    )
    run.applied.append(item.id)


def _claimed(run: _Run, item: ReviewItem, version: int) -> bool:
    if not repository.claim(run.session, item_id=item.id, version=version, actor=run.reviewer.name, at=run.now):
        return False
    repository.reload(run.session, item)
    return True


def _members(run: _Run, primary: ReviewItem, was_approved: bool) -> list[tuple[ReviewItem, int]]:
    """Group items the decision also answers, each with the version read now."""
    action, members = run.decision.action, []
    primary_question = run.session.get(Question, primary.question_id)
    lang = primary_question.lang if primary_question else None
    for member_id in dict.fromkeys(run.decision.group):
        member = run.session.get(ReviewItem, member_id)
        if member is None or member.id == primary.id or action == "withdraw":
            continue
        if action in ("relabel", "assign"):
            members.append((member, member.version))
            continue
        # An answer is only reused for questions in its own language, and only pending items can be decided.
        question = run.session.get(Question, member.question_id)
        if member.status == "pending" and question is not None and question.lang == lang:
            members.append((member, member.version))
        else:
            run.skipped.append(member.id)
    if was_approved and action in ("edit", "reject", "withdraw"):
        members += [(m, m.version) for m in repository.attached_members(run.session, primary.id)]
    return members


def decide(
    session: Session,
    *,
    sessions: sessionmaker[Session],
    item_id: int,
    decision: Decision,
    reviewer: Reviewer,
    approved: ApprovedAnswers,
    labels: list[str],
    idempotency_key: str | None = None,
    outbox: Outbox | None = None,
) -> DecisionResult:
    """Apply a reviewer's decision made on `decision.version`; StaleDecision (409) when the item changed since.

    With an idempotency key, a retry of the same request returns the first result and publishes nothing again.
    sessions opens the short transaction that logs a refused (stale) attempt: the request's own rolls back.
    outbox: the notification channels switched on; their rows are written in this transaction.
    """
    request_hash = _request_hash(item_id, decision)
    if idempotency_key and (
        replay := _replay(session, reviewer=reviewer, key=idempotency_key, request_hash=request_hash)
    ):
        return replay
    item = repository.get_item(session, item_id)
    run = _Run(session, decision, reviewer, utcnow())
    if item.version != decision.version or not _claimed(run, item, decision.version):
        if idempotency_key and (
            replay := _replay(session, reviewer=reviewer, key=idempotency_key, request_hash=request_hash)
        ):
            return replay  # our own earlier attempt won the race
        raise _stale(run, sessions, item)
    _check(session, item, decision, labels)  # on the row we now hold; a refusal rolls the claim back
    was_approved = item.status == "approved"
    members = _members(run, item, was_approved)
    text = decision.answer if isinstance(decision, Edit) else _approved_text(session, item)
    group_note = ", ".join(f"#{m.id}" for m, _ in members)
    _apply(run, item, text=text, primary_id=None, note=f"with its group: {group_note}" if group_note else None)
    for member, version in members:
        if _claimed(run, member, version):
            _apply(run, member, text=text, primary_id=item.id, note=f"with #{item.id}'s decision")
        else:
            run.skipped.append(member.id)
    if decision.action in ("approve", "edit"):
        reuse = _reuse(session, item, decision)
        for applied in run.applied:
            repository.get_item(session, applied).reuse = reuse
    if decision.action in STATUS_CHANGES:
        notices.decided(session, outbox, item_ids=run.applied, now=run.now)
    published, withdrawn = publishing.publish_decision(
        session,
        sessions=sessions,
        approved=approved,
        primary=item,
        applied=run.applied,
        was_approved=was_approved,
        now=run.now,
    )
    result = DecisionResult(
        item=item_state(session, item),
        applied_to=run.applied,
        skipped=run.skipped,
        published=published,
        withdrawn=withdrawn,
        retrain=isinstance(decision, Relabel) and decision.root_cause is not None,
    )
    if idempotency_key:
        _remember(
            session, reviewer=reviewer, key=idempotency_key, item_id=item.id, request_hash=request_hash, result=result
        )
    log.info("review.decided", item=item.id, action=decision.action, actor=reviewer.name, applied=len(run.applied))
    return result


def _reuse(session: Session, item: ReviewItem, decision: Decision) -> bool:
    """Whether the approved answer is reused for similar questions: as the reviewer chose, else yes unless it
    replies to a question the assistant abstained on (a reply to one person is not an FAQ unless they say so)."""
    if isinstance(decision, Edit) and decision.reuse is not None:
        return decision.reuse
    answer = repository.answer_of(session, item.question_id)
    return answer is None or answer.mode != "abstain"


def _approved_text(session: Session, item: ReviewItem) -> str | None:
    answer = repository.answer_of(session, item.question_id)
    return answer.text if answer else None


def _remember(
    session: Session, *, reviewer: Reviewer, key: str, item_id: int, request_hash: str, result: DecisionResult
) -> None:
    try:
        repository.save_idempotent(
            session,
            actor=reviewer.name,
            key=key,
            item_id=item_id,
            request_hash=request_hash,
            response=result.model_dump(mode="json"),
        )
    except IntegrityError as exc:
        raise Conflict(
            f"Idempotency-Key {key!r} is in use by another request of yours: retry in a moment",
            detail=problem(ReviewProblem.idempotency_key_busy, idempotency_key=key),
        ) from exc


def retrain_classifier(sessions: sessionmaker[Session], *, classifier: LocalClassifier) -> int:
    """Teach the local classifier every reviewer relabel, in place: the next classification uses it, no restart.

    Retrains run one at a time and each reads the labels afresh, so the last one includes every relabel. The
    classifier remembers the relabel version it was trained through (see sync_classifier)."""
    with classifier.retrain_lock:
        with session_scope(sessions) as session:
            examples = repository.relabel_examples(session)
            version = repository.relabel_version(session)
        if examples:
            classifier.retrain(examples)
        classifier.version = version
    if examples:
        log.info("review.classifier_retrained", examples=len(examples), version=version)
    return len(examples)


def sync_classifier(sessions: sessionmaker[Session], *, classifier: LocalClassifier) -> bool:
    """Retrain when the database holds relabels this classifier has not learnt (made by this process or another):
    the classifier version lives in the database as the latest applied relabel. Cheap when nothing changed (one
    indexed query), so every process runs it every few seconds. True when it retrained."""
    with session_scope(sessions) as session:
        current = repository.relabel_version(session)
    if current == classifier.version:
        return False
    retrain_classifier(sessions, classifier=classifier)
    return True
