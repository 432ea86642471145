"""What review writes to the outbox, in the transaction of the change it announces: decisions the asker should
hear of, and new items the project team should look at. The outbox (notify/) delivers them after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope
from service.notify.models import Channel
from service.notify.schemas import AnswerState, AnswerUpdated, AskerMail, DailyDigest, SealedLink, TeamEvent
from service.notify.service import Outbox, answer_updated, team_event
from service.notify.service import daily_digest as daily_digest_rows
from service.privacy import redact
from service.review import repository
from service.review.models import ReviewItem, ReviewStatus
from service.triage.links import followup_url
from service.triage.models import AnswerMode, Question


def _state(session: Session, item: ReviewItem, question: Question) -> AnswerState | None:
    """What the decision means to the asker; None when there is nothing to tell (a rejection without a reply)."""
    answer = repository.answer_of(session, question.id)
    if item.status == ReviewStatus.approved:
        if answer is None or answer.mode == AnswerMode.abstain:
            return "answered_by_team"
        return "approved" if (item.final_answer or "").strip() == answer.text.strip() else "corrected"
    if item.status == ReviewStatus.rejected and item.reply:
        return "rejected"
    return None


def decided(session: Session, outbox: Outbox | None, *, item_ids: Sequence[int], now: datetime) -> None:
    """Rows for each applied item whose asker should hear of the decision (approved, corrected, answered, or
    rejected with a public reply). Keyed by item and version: a replayed decision adds nothing."""
    if outbox is None or not outbox.channels:
        return
    for item_id in item_ids:
        item = session.get(ReviewItem, item_id)
        question = session.get(Question, item.question_id) if item else None
        if item is None or question is None or (state := _state(session, item, question)) is None:
            continue
        text = (item.final_answer if item.status == ReviewStatus.approved else item.reply) or ""
        lang = question.lang if question.lang in ("ja", "en") else "ja"
        sealed = question.followup_sealed
        link = (
            SealedLink(sealed=sealed, digest=question.followup_hash, path=followup_url("{token}"))
            if (sealed and question.followup_hash)
            else None
        )
        answer_updated(
            session,
            outbox,
            key=f"answer.updated.item{item.id}-v{item.version}",
            update=AnswerUpdated(
                id=question.public_id, state=state, lang=lang, question=question.text, answer=text, decided_at=now
            ),
            mail=AskerMail(state=state, lang=lang, answer=text, link=link),
            asker_email=question.asker_email,
        )


def enqueued(session: Session, outbox: Outbox | None, *, item: ReviewItem) -> None:
    """A row for the team's channels when a new item is an abstention or a flagged draft."""
    if outbox is None or not outbox.channels or item.priority != "high":
        return
    question = session.get(Question, item.question_id)
    answer = repository.answer_of(session, item.question_id)
    if question is None:
        return
    abstained = answer is None or answer.mode == AnswerMode.abstain
    team_event(
        session,
        outbox,
        key=f"queued.item{item.id}",
        event=TeamEvent(
            event="question.abstained" if abstained else "draft.flagged",
            item_id=item.id,
            lang=question.lang,
            question=redact(question.text),
            flags=list(answer.flags) if answer else [],
            review_path=f"/review/items/{item.id}",
        ),
    )


def daily_digest(sessions: sessionmaker[Session], outbox: Outbox, settings: Settings, *, now: datetime) -> bool:
    """Write today's digest for the team's channels once the local hour has come (idempotent per day, so every
    process may call it); True when rows were written (or already there) for today."""
    if settings.digest_hour < 0 or not outbox.channels & {Channel.webhook, Channel.teams, Channel.slack}:
        return False
    local = now.astimezone(ZoneInfo(settings.digest_timezone))
    if local.hour < settings.digest_hour:
        return False
    since = now - timedelta(days=1)
    with session_scope(sessions) as session:
        counts = repository.day_counts(session, since=since)
        daily_digest_rows(session, outbox, digest=DailyDigest(date=local.date().isoformat(), **counts))
    return True
