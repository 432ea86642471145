"""The outbox: rows written in the caller's transaction, delivered by a loop with retries, backoff and a dead state.

Delivery is at least once, made exactly once for a receiver that honours the idempotency key: a row is leased
(claimed) in one short transaction, sent outside any transaction, then marked sent. A crash after the send and
before the mark sends it again after the lease, with the same key."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope, utcnow
from service.errors import BadInput, NotFound
from service.logging import get_logger
from service.notify import repository
from service.notify.channels import DeliveryFailed, Outgoing, send
from service.notify.models import Channel, Kind, OutboxStatus
from service.notify.schemas import AnswerUpdated, AskerMail, DailyDigest, OutboxOut, TeamEvent

log = get_logger("notify")
MAX_BACKOFF_S = 6 * 3600.0  # however many attempts, a retry waits at most this long
BATCH = 20  # rows claimed per round
TEAM_CHANNELS = (Channel.webhook, Channel.teams, Channel.slack)


@dataclass(frozen=True)
class Outbox:
    """The channels switched on by settings: what writers consult to know which rows to add."""

    channels: frozenset[Channel] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbox:
        configured = {
            Channel.webhook: settings.webhook_url,
            Channel.teams: settings.teams_webhook_url,
            Channel.slack: settings.slack_webhook_url,
            Channel.email: settings.smtp_host,
        }
        return cls(frozenset(channel for channel, setting in configured.items() if setting))


def _add(session: Session, channel: Channel, receiver: str, kind: Kind, payload: BaseModel, key: str) -> None:
    repository.add(
        session,
        channel=channel,
        receiver=receiver,
        kind=kind,
        payload=payload.model_dump(mode="json"),
        key=f"{key}.{channel.value}",
        at=utcnow(),
    )


def answer_updated(
    session: Session, outbox: Outbox, *, key: str, update: AnswerUpdated, mail: AskerMail, asker_email: str | None
) -> None:
    """Rows for a decision the asker should hear of: the webhook, and an e-mail when their address is known.

    key names the decision (item and version), so writing the same decision twice adds nothing."""
    if Channel.webhook in outbox.channels:
        _add(session, Channel.webhook, "webhook", Kind.answer_updated, update, key)
    if Channel.email in outbox.channels and asker_email:
        _add(session, Channel.email, asker_email, Kind.answer_updated, mail, key)


def team_event(session: Session, outbox: Outbox, *, key: str, event: TeamEvent) -> None:
    """Rows for the project team's channels (and the webhook): a new abstention or flagged draft."""
    for channel in TEAM_CHANNELS:
        if channel in outbox.channels:
            _add(session, channel, channel.value, Kind(event.event), event, key)


def daily_digest(session: Session, outbox: Outbox, *, digest: DailyDigest) -> None:
    """Rows for the team's channels with the day's counts; keyed by the date, so each day's digest goes once
    however many processes write it."""
    for channel in TEAM_CHANNELS:
        if channel in outbox.channels:
            _add(session, channel, channel.value, Kind.daily_digest, digest, f"digest.{digest.date}")


def backoff_s(attempts: int, *, base_s: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt: base doubled per failed attempt, capped, then between half and all of it."""
    delay = min(base_s * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF_S)
    return float(delay * (0.5 + jitter() / 2))


def lease_s(settings: Settings) -> float:
    """How long a claimed row stays with its loop: well past one send's timeout (then it is due again)."""
    return max(60.0, 4 * settings.outbox_timeout_s)


@dataclass
class Round:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)


def claim(sessions: sessionmaker[Session], settings: Settings, *, limit: int = BATCH) -> list[Outgoing]:
    """Lease the rows due now in one short transaction (skipping rows another loop holds)."""
    now = utcnow()
    until = now + timedelta(seconds=lease_s(settings))
    claimed = []
    with session_scope(sessions) as session:
        for row_id in repository.due_ids(session, now=now, limit=limit):
            if repository.lease(session, row_id=row_id, now=now, until=until):
                row = repository.get(session, row_id)
                assert row is not None
                claimed.append(
                    Outgoing(row.id, row.channel, row.receiver, dict(row.payload), row.idempotency_key, row.attempts)
                )
    return claimed


def deliver_due(sessions: sessionmaker[Session], settings: Settings, *, limit: int = BATCH) -> Round:
    """One round: claim what is due, send each, record each outcome."""
    done = Round()
    for outgoing in claim(sessions, settings, limit=limit):
        try:
            send(outgoing, settings)
        except DeliveryFailed as exc:
            dead = _failed(sessions, settings, outgoing, str(exc), permanent=exc.permanent)
            (done.dead if dead else done.failed).append(outgoing.id)
            continue
        _sent(sessions, outgoing)
        done.sent.append(outgoing.id)
    return done


def _sent(sessions: sessionmaker[Session], outgoing: Outgoing) -> None:
    with session_scope(sessions) as session:
        row = repository.get(session, outgoing.id)
        if row is not None:
            row.status, row.sent_at, row.last_error = OutboxStatus.sent, utcnow(), None
    log.info("notify.sent", row=outgoing.id, channel=outgoing.channel, attempts=outgoing.attempts)


def _failed(
    sessions: sessionmaker[Session], settings: Settings, outgoing: Outgoing, error: str, *, permanent: bool
) -> bool:
    """Schedule the next attempt, or give up (dead) after max attempts or a permanent failure; True when dead."""
    dead = permanent or outgoing.attempts >= settings.outbox_max_attempts
    with session_scope(sessions) as session:
        row = repository.get(session, outgoing.id)
        if row is None:
            return dead
        row.last_error = error[:1000]
        if dead:
            row.status = OutboxStatus.dead
        else:
            wait = backoff_s(outgoing.attempts, base_s=settings.outbox_backoff_s)
            row.next_attempt_at = utcnow() + timedelta(seconds=wait)
    log.warning(
        "notify.failed", row=outgoing.id, channel=outgoing.channel, attempts=outgoing.attempts, dead=dead, error=error
    )
    return dead


def rows(session: Session, *, status: OutboxStatus | None, limit: int) -> list[OutboxOut]:
    """Outbox rows for admins, newest first."""
    listed = repository.listed(session, status=status, limit=limit)
    return [OutboxOut.model_validate(row, from_attributes=True) for row in listed]


def retry(session: Session, *, row_id: int) -> OutboxOut:
    """Send a dead row again from the first attempt (after the receiver is fixed); a sent row is refused."""
    row = repository.get(session, row_id)
    if row is None:
        raise NotFound(f"no outbox row {row_id}", detail={"id": row_id})
    if row.status == OutboxStatus.sent:
        raise BadInput(f"outbox row {row_id} was sent already: nothing to retry", detail={"status": row.status})
    row.status, row.attempts, row.next_attempt_at = OutboxStatus.pending, 0, utcnow()
    session.flush()
    log.info("notify.retry", row=row_id)
    return OutboxOut.model_validate(row, from_attributes=True)


class DeliveryLoop:
    """Delivers due outbox rows every interval_s seconds on a daemon thread until stopped.

    Several processes may each run one: a row is leased by one of them at a time."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions, self._settings = sessions, settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="outbox-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                deliver_due(self._sessions, self._settings)
            except Exception as exc:  # the database is down: try again next round
                log.warning("notify.round_failed", error=f"{type(exc).__name__}: {exc}")
            if self._stop.wait(self._settings.outbox_interval_s):
                return
