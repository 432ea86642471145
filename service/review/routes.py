"""HTTP for reviewers: the queue API (/v1/review/...) and, from pages.py, the /review pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Query, Response

from service.auth.deps import ReviewerDep
from service.deps import SessionDep, SessionsDep, SettingsDep
from service.errors import error_responses
from service.notify.service import Outbox
from service.retrieval.deps import KnowledgeDep
from service.review import decisions, phrasings, service
from service.review.grouping import QuestionSpace
from service.review.pages import router as pages_router
from service.review.schemas import (
    AuditEntry,
    Decision,
    DecisionResult,
    ItemDetail,
    ItemPage,
    ItemQuery,
    PhrasingIn,
    PhrasingResult,
)
from service.triage.deps import TriageDep

router = APIRouter(tags=["review"], responses=error_responses(401, 422))
router.include_router(pages_router)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string per decision: a retry with the same key returns the first result.",
    ),
]


@router.get("/v1/review/items", response_model=ItemPage)
def list_items(
    reviewer: ReviewerDep,
    session: SessionDep,
    knowledge: KnowledgeDep,
    settings: SettingsDep,
    query: Annotated[ItemQuery, Query()],
) -> ItemPage:
    """The review queue, filtered, sorted and paginated; near-duplicate questions come as one row per group."""
    space = QuestionSpace.of(knowledge)
    return service.list_items(session, query=query, space=space, threshold=settings.review_group_similarity)


@router.get("/v1/review/items/{item_id}", response_model=ItemDetail, responses=error_responses(404))
def item_detail(
    item_id: int, reviewer: ReviewerDep, session: SessionDep, knowledge: KnowledgeDep, settings: SettingsDep
) -> ItemDetail:
    """Question, draft, cited passages, classification, feedback, near-duplicates, similar decisions, audit log."""
    return service.item_detail(session, item_id=item_id, knowledge=knowledge, settings=settings)


@router.get("/v1/review/items/{item_id}/audit", response_model=list[AuditEntry], responses=error_responses(404))
def audit(item_id: int, reviewer: ReviewerDep, session: SessionDep) -> list[AuditEntry]:
    """The item's append-only audit log: every decision attempt, applied or refused as stale."""
    return service.audit_log(session, item_id=item_id)


@router.post(
    "/v1/review/items/{item_id}/decisions",
    response_model=DecisionResult,
    responses=error_responses(404, 409, 413, 503),
)
def decide(
    item_id: int,
    body: Decision,
    reviewer: ReviewerDep,
    session: SessionDep,
    sessions: SessionsDep,
    triage: TriageDep,
    background: BackgroundTasks,
    response: Response,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> DecisionResult:
    """Approve, edit and approve, reject, withdraw, relabel or assign. Send the item's `version`: a decision made
    on an older one gets 409 naming who changed the item and when."""
    service.check_extract_confirmed(session, item_id=item_id, decision=body)
    result = decisions.decide(
        session,
        item_id=item_id,
        sessions=sessions,
        decision=body,
        reviewer=reviewer,
        approved=triage.approved,
        labels=triage.classifier.taxonomy.ids,
        idempotency_key=idempotency_key,
        outbox=Outbox.from_settings(settings),
    )
    session.commit()  # publication follows the commit: say here what the vector store could not take yet
    if pending := session.info.pop("publish_pending", []):
        result = result.model_copy(update={"publish_pending": pending})
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    elif result.retrain:
        background.add_task(decisions.retrain_classifier, sessions, classifier=triage.classifier.local)
    return result


@router.post(
    "/v1/review/items/{item_id}/phrasings",
    response_model=PhrasingResult,
    status_code=201,
    responses=error_responses(404, 409, 413, 503),
)
def add_phrasing(
    item_id: int, body: PhrasingIn, reviewer: ReviewerDep, session: SessionDep, sessions: SessionsDep, triage: TriageDep
) -> PhrasingResult:
    """Another way staff ask an approved answer's question: /v1/ask then reuses the answer for it too (after the same
    paraphrase check). Send the item's `version`; the phrasing follows the answer when it is edited or withdrawn."""
    result = phrasings.add_phrasing(
        session,
        sessions=sessions,
        approved=triage.approved,
        item_id=item_id,
        text=body.text,
        version=body.version,
        reviewer=reviewer,
    )
    session.commit()  # publication follows the commit
    if pending := session.info.pop("publish_pending", []):
        result = result.model_copy(update={"publish_pending": pending})
    return result
