"""Other phrasings of an approved answer, added by reviewers on the item page (issue 12.2).

A phrasing is stored as a question of its own (source `review`, left out of the reports) whose review item is
approved with the answer's decision, exactly as a group member is: /v1/ask matches it like the answer's own
question, and editing, rejecting or withdrawing the answer takes it along (attached members follow the primary).
"""

from __future__ import annotations

import uuid
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.auth.service import Reviewer
from service.db import utcnow
from service.errors import BadInput, Conflict, problem
from service.logging import get_logger
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.documents import detect_lang
from service.review import publishing, repository
from service.review.decisions import item_state
from service.review.models import ReviewItem, ReviewStatus
from service.review.schemas import Phrasing, PhrasingResult, ReviewProblem
from service.triage.models import Question, QuestionSource

log = get_logger("review")


def phrasings_of(session: Session, item_id: int) -> list[Phrasing]:
    """The other questions an approved answer is matched through: its group's and those reviewers added."""
    stmt = (
        select(ReviewItem.id, Question.text)
        .join(Question, Question.id == ReviewItem.question_id)
        .where(ReviewItem.answered_by == item_id, ReviewItem.status == ReviewStatus.approved)
        .order_by(ReviewItem.id)
    )
    return [Phrasing(item_id=row_id, text=text) for row_id, text in session.execute(stmt)]


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def add_phrasing(
    session: Session,
    *,
    sessions: sessionmaker[Session],
    approved: ApprovedAnswers,
    item_id: int,
    text: str,
    version: int,
    reviewer: Reviewer,
) -> PhrasingResult:
    """Match the item's approved answer through one more question. The item must be approved for reuse and still at
    `version` (Conflict otherwise, as for a decision): the phrasing claims the item, so a withdrawal made at the same
    time either takes the phrasing along or is refused as stale, and a withdrawn answer is never served through it."""
    item = repository.get_item(session, item_id)
    if item.answered_by is not None:
        raise BadInput(
            f"item {item.id} was answered with #{item.answered_by}'s decision: add the phrasing on #{item.answered_by}",
            detail=problem(ReviewProblem.answered_elsewhere, answered_by=item.answered_by, id=item.id),
        )
    if item.status != ReviewStatus.approved or not item.reuse or not item.final_answer:
        raise BadInput(
            f"item {item.id} has no answer approved for reuse: approve it (for similar questions) first",
            detail=problem(ReviewProblem.not_approved_for_reuse, status=item.status, id=item.id),
        )
    question = session.get(Question, item.question_id)
    assert question is not None
    lang = detect_lang(text)
    if lang != question.lang:
        raise BadInput(
            f"write the phrasing in {question.lang}: the approved answer is only reused for questions in its language",
            detail=problem(ReviewProblem.wrong_language, phrasing_lang=lang, answer_lang=question.lang),
        )
    if any(_same(text, known) for known in [question.text, *(p.text for p in phrasings_of(session, item.id))]):
        raise BadInput(
            "this phrasing is already matched to the answer",
            detail=problem(ReviewProblem.duplicate_phrasing, text=text),
        )
    now = utcnow()
    if item.version != version or not repository.claim(
        session, item_id=item.id, version=version, actor=reviewer.name, at=now
    ):
        repository.reload(session, item)
        raise Conflict(
            f"item {item.id} changed since version {version} (it is now version {item.version}): reload it and add "
            "the phrasing again",
            detail=problem(
                ReviewProblem.stale_phrasing,
                id=item.id,
                your_version=version,
                current_version=item.version,
                changed_by=item.updated_by,
                changed_at=item.updated_at.replace(tzinfo=item.updated_at.tzinfo or UTC).isoformat(),
            ),
        )
    repository.reload(session, item)
    asked = Question(public_id=str(uuid.uuid4()), text=text, lang=lang, source=QuestionSource.review)
    session.add(asked)
    session.flush()
    member = ReviewItem(
        question_id=asked.id,
        status=ReviewStatus.approved,
        priority="normal",
        version=1,
        final_answer=item.final_answer,
        answered_by=item.id,
        reuse=True,
        root_cause=item.root_cause,
        updated_by=reviewer.name,
        decided_by=reviewer.name,
        decided_at=now,
    )
    session.add(member)
    session.flush()
    event = {"actor": reviewer.name, "action": "phrasing", "outcome": "applied", "before": {}, "created_at": now}
    repository.add_event(session, item_id=item.id, version=item.version - 1, after={"phrasing": text}, **event)
    repository.add_event(
        session, item_id=member.id, version=0, after={"status": member.status}, note=f"with #{item.id}'s decision",
        **event,
    )  # fmt: skip
    publishing.publish_after_commit(session, sessions, approved, [member.id])
    log.info("review.phrasing_added", item=item.id, phrasing_item=member.id, actor=reviewer.name)
    return PhrasingResult(
        item=item_state(session, item),
        phrasing=Phrasing(item_id=member.id, text=text),
        published=[publishing.answer_id(member.id)],
    )
