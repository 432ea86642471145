"""HTTP for reviewers: the queue API (/v1/review/...) and, from pages.py, the /review pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Query, Response

from service.deps import KnowledgeDep, SessionsDep, SettingsDep, TriageDep
from service.review import auth, decisions, service
from service.review.auth import AdminDep, ReviewerDep, ReviewSessionDep
from service.review.grouping import QuestionSpace
from service.review.models import ReviewerAccount
from service.review.pages import router as pages_router
from service.review.schemas import (
    AuditEntry,
    Decision,
    DecisionResult,
    ItemDetail,
    ItemPage,
    ItemQuery,
    Me,
    NewUser,
    NewUserOut,
    UserOut,
)

router = APIRouter(tags=["review"])
router.include_router(pages_router)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string per decision: a retry with the same key returns the first result.",
    ),
]


@router.get("/v1/review/me", response_model=Me)
def me(reviewer: ReviewerDep) -> Me:
    """Who the token belongs to."""
    return Me(name=reviewer.name, role=reviewer.role)


@router.get("/v1/review/items", response_model=ItemPage)
def list_items(
    reviewer: ReviewerDep,
    session: ReviewSessionDep,
    knowledge: KnowledgeDep,
    settings: SettingsDep,
    query: Annotated[ItemQuery, Query()],
) -> ItemPage:
    """The review queue, filtered, sorted and paginated; near-duplicate questions come as one row per group."""
    space = QuestionSpace.of(knowledge)
    return service.list_items(session, query=query, space=space, threshold=settings.review_group_similarity)


@router.get("/v1/review/items/{item_id}", response_model=ItemDetail)
def item_detail(
    item_id: int, reviewer: ReviewerDep, session: ReviewSessionDep, knowledge: KnowledgeDep, settings: SettingsDep
) -> ItemDetail:
    """Question, draft, cited passages, classification, feedback, near-duplicates, similar decisions, audit log."""
    return service.item_detail(session, item_id=item_id, knowledge=knowledge, settings=settings)


@router.get("/v1/review/items/{item_id}/audit", response_model=list[AuditEntry])
def audit(item_id: int, reviewer: ReviewerDep, session: ReviewSessionDep) -> list[AuditEntry]:
    """The item's append-only audit log: every decision attempt, applied or refused as stale."""
    return service.audit_log(session, item_id=item_id)


@router.post("/v1/review/items/{item_id}/decisions", response_model=DecisionResult)
def decide(
    item_id: int,
    body: Decision,
    reviewer: ReviewerDep,
    session: ReviewSessionDep,
    sessions: SessionsDep,
    triage: TriageDep,
    background: BackgroundTasks,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DecisionResult:
    """Approve, edit and approve, reject, withdraw, relabel or assign. Send the item's `version`: a decision made
    on an older one gets 409 naming who changed the item and when."""
    result = decisions.decide(
        session,
        item_id=item_id,
        decision=body,
        reviewer=reviewer,
        approved=triage.approved,
        labels=triage.classifier.taxonomy.ids,
        idempotency_key=idempotency_key,
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    elif result.retrain:
        background.add_task(decisions.retrain_classifier, sessions, classifier=triage.classifier.local)
    return result


def _user(account: ReviewerAccount) -> UserOut:
    return UserOut(
        name=account.name,
        role=account.role,
        active=account.revoked_at is None,
        created_at=service.aware(account.created_at),
        revoked_at=service.aware(account.revoked_at) if account.revoked_at else None,
    )


@router.get("/v1/review/users", response_model=list[UserOut])
def list_users(admin: AdminDep, session: ReviewSessionDep) -> list[UserOut]:
    """Reviewers and admins (admins only)."""
    return [_user(account) for account in auth.list_users(session)]


@router.post("/v1/review/users", response_model=NewUserOut, status_code=201)
def add_user(body: NewUser, admin: AdminDep, session: ReviewSessionDep) -> NewUserOut:
    """Add a reviewer or admin (admins only); the token is in this response and nowhere else."""
    account, token = auth.add_user(session, name=body.name, role=body.role)
    return NewUserOut(**_user(account).model_dump(), token=token)


@router.delete("/v1/review/users/{name}", response_model=UserOut)
def revoke_user(name: str, admin: AdminDep, session: ReviewSessionDep) -> UserOut:
    """Revoke a user's token at once (admins only)."""
    return _user(auth.revoke_user(session, name=name))
