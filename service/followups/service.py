"""What an asker's follow-up link shows: the question's state now, derived from its stored answer and review item.

Nothing here is stored: the state follows from the answer's mode (what the asker was shown) and the review item
(what a reviewer decided since). Only the asker's own question and answer leave; never reviewer names or notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.followups.schemas import MAX_TOKEN_CHARS, FollowupOut, FollowupState
from service.review.models import ReviewItem, ReviewStatus
from service.review.publishing import cited
from service.triage.drafting import REVIEW_FIRST_TEXT
from service.triage.links import followup_digest
from service.triage.models import Answer, AnswerMode, Question
from service.triage.schemas import Citation

State = FollowupState

NOTICES: dict[FollowupState, dict[str, str]] = {
    State.approved: {
        "ja": "回答が更新されました：プロジェクトチームがこの回答を確認しました。",
        "en": "This answer was checked and approved by the project team.",
    },
    State.corrected: {
        "ja": "回答が更新されました：プロジェクトチームが内容を修正しました。",
        "en": "This answer was corrected by the project team.",
    },
    State.answered_by_team: {
        "ja": "回答が更新されました：プロジェクトチームから回答が届きました。",
        "en": "The project team has answered your question.",
    },
    State.rejected: {
        "ja": "回答が更新されました：以前の回答はプロジェクトチームの確認で取り下げられました。",
        "en": "The project team withdrew the earlier answer after checking it.",
    },
}
# Shown for a rejected or withdrawn answer when the reviewer left no public reply: never the text they stopped.
NO_LONGER_VALID = {
    "ja": "以前の回答は正確でない可能性があるため取り下げられました。必要であれば、もう一度ご質問ください。",
    "en": "The earlier answer was withdrawn because it may not be accurate. "
    "Please ask again if you still need an answer.",
}
NOT_FOUND = "no follow-up at this link: check that it was copied whole"


@dataclass(frozen=True)
class _Shown:
    state: FollowupState
    text: str
    citations: list[dict[str, Any]]


def followup(session: Session, *, token: str, immediate: bool) -> FollowupOut:
    """The question behind a follow-up token; NotFound alike for a malformed, unknown or revoked token."""
    question = _question(session, token)
    if question is None:
        raise NotFound(NOT_FOUND)
    return _out(session, question, immediate=immediate)


def check(session: Session, *, tokens: Sequence[str], immediate: bool) -> list[FollowupOut | None]:
    """Every token's follow-up in one go (None where there is none), in the order given."""
    return [
        _out(session, question, immediate=immediate) if (question := _question(session, token)) else None
        for token in tokens
    ]


def _question(session: Session, token: str) -> Question | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return session.scalars(select(Question).where(Question.followup_hash == followup_digest(token))).one_or_none()


def _out(session: Session, question: Question, *, immediate: bool) -> FollowupOut:
    answer = session.scalars(select(Answer).where(Answer.question_id == question.id)).one_or_none()
    item = session.scalars(select(ReviewItem).where(ReviewItem.question_id == question.id)).one_or_none()
    lang = question.lang if question.lang in ("ja", "en") else "ja"
    first = initial_state(answer)
    shown = _shown(session, answer, item, lang=lang, immediate=immediate)
    changed = shown.state != first
    return FollowupOut(
        id=question.public_id,
        question=question.text,
        lang=lang,
        state=shown.state,
        answer=shown.text,
        citations=[Citation.model_validate(c) for c in shown.citations],
        notice=NOTICES.get(shown.state, {}).get(lang) if changed else None,
        changed=changed,
        asked_at=_aware(question.created_at),
        changed_at=_aware(item.decided_at) if changed and item and item.decided_at else None,
    )


def initial_state(answer: Answer | None) -> FollowupState:
    """What the asker was shown when asking: a reviewed or curated answer, a draft, or a promise of one."""
    mode = answer.mode if answer else AnswerMode.abstain
    if mode == AnswerMode.approved:
        return State.approved
    if mode == AnswerMode.faq:
        return State.faq
    return State.sent_to_team if mode == AnswerMode.abstain else State.draft


def _shown(session: Session, answer: Answer | None, item: ReviewItem | None, *, lang: str, immediate: bool) -> _Shown:
    """The state and text for the asker now: the reviewer's decision wins over the draft."""
    first = initial_state(answer)
    drafted = answer.text if answer else ""
    if item is None or item.status == ReviewStatus.pending:
        if first == State.draft and not immediate:  # review_first: the draft stays hidden until approved
            return _Shown(first, REVIEW_FIRST_TEXT[lang], [])
        return _Shown(first, drafted, list(answer.citations) if answer else [])
    if item.status == ReviewStatus.approved:
        final = item.final_answer or drafted
        if first == State.sent_to_team:
            state = State.answered_by_team
        elif final.strip() == drafted.strip():
            state = first if first in (State.faq, State.approved) else State.approved
        else:
            state = State.corrected
        return _Shown(state, final, cited(final, _source_citations(session, item, answer)))
    reply = item.reply if item.status == ReviewStatus.rejected else None
    return _Shown(State.rejected, reply or NO_LONGER_VALID[lang], [])


def _source_citations(session: Session, item: ReviewItem, answer: Answer | None) -> list[dict[str, Any]]:
    """The passages an approved text's [n] refer to: its own draft's, or the group primary's it was approved with."""
    if item.answered_by:
        primary = session.get(ReviewItem, item.answered_by)
        if primary is not None:
            answer = session.scalars(select(Answer).where(Answer.question_id == primary.question_id)).one_or_none()
    return list(answer.citations) if answer else []


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
