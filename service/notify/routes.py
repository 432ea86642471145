"""HTTP for admins: the outbox's rows by status (dead ones above all) and a retry for a dead row."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.auth.deps import AdminDep
from service.deps import SessionDep
from service.errors import error_responses
from service.notify import service
from service.notify.models import OutboxStatus
from service.notify.schemas import OutboxOut

router = APIRouter(tags=["notify"], responses=error_responses(401, 403, 422))


@router.get("/v1/admin/outbox", response_model=list[OutboxOut])
def outbox(
    admin: AdminDep,
    session: SessionDep,
    status: Annotated[OutboxStatus | None, Query(description="pending, sent or dead; all when absent")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OutboxOut]:
    """Notifications newest first: where each goes, attempts, the last error. Dead rows need an admin's retry."""
    return service.rows(session, status=status, limit=limit)


@router.post("/v1/admin/outbox/{row_id}/retry", response_model=OutboxOut, responses=error_responses(404))
def retry(row_id: int, admin: AdminDep, session: SessionDep) -> OutboxOut:
    """Deliver a dead (or waiting) row again from its first attempt, with the same idempotency key."""
    return service.retry(session, row_id=row_id)
