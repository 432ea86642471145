"""SQL for the outbox: add rows, claim due ones (SKIP LOCKED on PostgreSQL), record each attempt's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.notify.models import Channel, Kind, OutboxRow, OutboxStatus

Pending = OutboxStatus.pending


def add(
    session: Session, *, channel: Channel, receiver: str, kind: Kind, payload: dict[str, Any], key: str, at: datetime
) -> None:
    """A pending row in the caller's transaction; a row with the same idempotency key already there is kept as is."""
    values = {
        "channel": channel.value,
        "receiver": receiver,
        "kind": kind.value,
        "payload": payload,
        "idempotency_key": key,
        "status": Pending.value,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(OutboxRow).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"]))


def due_ids(session: Session, *, now: datetime, limit: int) -> list[int]:
    """Rows due now, oldest first; on PostgreSQL rows another loop holds locked right now are skipped."""
    query = (
        select(OutboxRow.id)
        .where(OutboxRow.status == Pending, OutboxRow.next_attempt_at <= now)
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def lease(session: Session, *, row_id: int, now: datetime, until: datetime) -> bool:
    """Take a due row for one attempt (compare-and-set: still pending and due); True when this caller got it."""
    result = session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status == Pending, OutboxRow.next_attempt_at <= now)
        .values(next_attempt_at=until, attempts=OutboxRow.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def get(session: Session, row_id: int) -> OutboxRow | None:
    return session.get(OutboxRow, row_id)


def listed(session: Session, *, status: OutboxStatus | None, limit: int) -> Sequence[OutboxRow]:
    """Rows newest first, of one status or all."""
    query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxRow.status == status)
    return session.scalars(query).all()


def for_channel(session: Session, channel: Channel) -> Sequence[OutboxRow]:
    return session.scalars(select(OutboxRow).where(OutboxRow.channel == channel).order_by(OutboxRow.id)).all()
