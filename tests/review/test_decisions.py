"""Decisions through the API: optimistic concurrency, the audit log, idempotency, and what approval publishes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.auth.service import Reviewer
from service.config import Settings
from service.db import session_scope
from service.retrieval.ingest import ingest_knowledge
from service.review import decisions
from service.review.models import ReviewItem
from service.review.schemas import Approve
from service.triage.models import Question
from tests.conftest import mock_requests
from tests.review.helpers import (
    COST,
    COST_PARAPHRASE,
    TRAINING,
    TRAINING_PARAPHRASE,
    ReviewApp,
    add_item,
    review_app,
)

# The first test of a session also pays for indexing the knowledge base (a session fixture).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def with_llm(indexed_settings: Settings, database_url: str, mock_llm: str) -> Iterator[ReviewApp]:
    """The service drafting with the mock LLM; the local classifier, so only drafting would call the LLM."""
    overrides: dict[str, Any] = {"openai_base_url": mock_llm, "llm_model": "mock-llm", "classifier": "local"}
    with review_app(indexed_settings, database_url, **overrides) as running:
        yield running


def _chat_calls(mock_url: str) -> int:
    return sum(1 for r in mock_requests(mock_url) if "chat" in str(r.get("path", r)))


def test_approve_makes_ask_return_the_answer_for_a_paraphrase_without_an_llm_call(
    with_llm: ReviewApp, mock_llm: str
) -> None:
    review, sato = with_llm, with_llm.user("sato")
    first = review.ask(COST)
    assert first["mode"] == "llm"
    item = review.item_of(first["id"])
    decided = review.decide(item, sato, action="edit", answer="初期費用1,800万円、月額最大620万円です。[1]")
    assert decided.status_code == 200, decided.text
    state = decided.json()["item"]
    assert state["status"] == "approved" and state["kb_url"] == f"/kb/approved-{item}"
    httpx.delete(f"{mock_llm.removesuffix('/v1')}/mock/requests")

    reused = review.ask(COST_PARAPHRASE)
    assert (reused["mode"], reused["status"]) == ("approved", "approved")
    assert reused["answer"] == state["published_answer"] == "初期費用1,800万円、月額最大620万円です。[1]"
    assert "出典" not in reused["answer"]  # the sources are data, rendered as links, not text appended to the answer
    [source] = reused["citations"]
    assert source["n"] == 1 and source["url"].startswith("/kb/") and source["url"] == first["citations"][0]["url"]
    assert reused["usage"]["llm_calls"] == 0 and _chat_calls(mock_llm) == 0

    page = review.client.get(state["kb_url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert COST in page.text and "初期費用1,800万円" in page.text and "FAQ" in page.text


def test_a_reused_answer_is_logged_against_the_approved_item_instead_of_queued_again(review: ReviewApp) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    assert review.decide(item, sato, action="approve").status_code == 200
    reused = [review.ask(TRAINING_PARAPHRASE) for _ in range(2)]
    assert [r["mode"] for r in reused] == ["approved", "approved"]
    with session_scope(review.sessions) as session:
        asked = session.query(Question).filter(Question.public_id.in_([r["id"] for r in reused])).all()
        assert len(asked) == 2  # still stored, for the reports
        assert session.query(ReviewItem).filter(ReviewItem.question_id.in_([q.id for q in asked])).count() == 0
    pending = review.client.get("/v1/review/items", params={"status": "pending"}, headers=sato).json()
    assert TRAINING_PARAPHRASE not in [i["question"] for i in pending["items"]]
    assert review.detail(item, sato)["reused"] == 2
    signed_in = review.client.post("/review/login", data={"token": sato["Authorization"].removeprefix("Bearer ")})
    assert signed_in.status_code == 200, signed_in.text
    page = review.client.get(f"/review/items/{item}")
    assert "再利用された質問: 2件" in page.text
    dashboard = review.client.get("/dashboard")
    assert dashboard.status_code == 200
    assert '<div class="card" id="reused-card"><div class="value">2</div>' in dashboard.text


def test_withdrawing_an_approved_answer_stops_its_reuse_and_removes_its_page(review: ReviewApp) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    assert review.decide(item, sato, action="approve").status_code == 200
    assert review.ask(TRAINING_PARAPHRASE)["mode"] == "approved"
    withdrawn = review.decide(item, sato, action="withdraw", reason="研修日程が変わったため")
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] == [f"approved-{item}"]
    assert review.ask(TRAINING_PARAPHRASE)["mode"] != "approved"
    assert review.client.get(f"/kb/approved-{item}").status_code == 404


def test_rejecting_an_approved_answer_stops_its_reuse(review: ReviewApp) -> None:
    sato, suzuki = review.user("sato"), review.user("suzuki")
    item = review.item_of(review.ask(TRAINING)["id"])
    assert review.decide(item, sato, action="approve").status_code == 200
    rejected = review.decide(item, suzuki, action="reject", reason="引用が古い")
    assert rejected.status_code == 200 and rejected.json()["item"]["status"] == "rejected"
    assert review.ask(TRAINING_PARAPHRASE)["mode"] != "approved"
    assert review.detail(item, sato)["item"]["reason"] == "引用が古い"


def test_a_stale_decision_is_rejected_with_409_naming_who_changed_the_item_and_when(review: ReviewApp) -> None:
    sato, suzuki = review.user("sato"), review.user("suzuki")
    with session_scope(review.sessions) as session:
        item = add_item(session, "委託先にお客様の情報を見せて大丈夫？", cause="security").id
    assert review.decide(item, sato, action="relabel", root_cause="process", version=1).status_code == 200
    stale = review.decide(item, suzuki, action="reject", reason="対象外", version=1)
    assert stale.status_code == 409
    body = stale.json()
    assert "sato" in body["error"] and body["detail"]["changed_by"] == "sato"
    assert body["detail"]["current_version"] == 2 and body["detail"]["your_version"] == 1
    assert body["detail"]["changed_at"][:4].isdigit()
    assert review.detail(item, sato)["item"]["status"] == "pending"


def test_two_reviewers_deciding_at_once_exactly_one_applies_and_the_audit_log_has_both(review: ReviewApp) -> None:
    reviewers = [review.user("sato"), review.user("suzuki")]
    item = review.item_of(review.ask(TRAINING)["id"])
    published: list[str] = []
    original = review.app.state.triage.approved.publish
    review.app.state.triage.approved.publish = lambda **kw: (published.append(kw["answer_id"]), original(**kw))[1]
    start = threading.Barrier(2)
    results: dict[str, int] = {}

    def decide(headers: dict[str, str], action: dict[str, Any]) -> None:
        start.wait()
        response = review.client.post(f"/v1/review/items/{item}/decisions", headers=headers, json=action)
        results[headers["Authorization"]] = response.status_code

    actions = [
        {"action": "approve", "version": 1, "confirm_extract": True},
        {"action": "reject", "version": 1, "reason": "重複"},
    ]
    threads = [threading.Thread(target=decide, args=pair) for pair in zip(reviewers, actions, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results.values()) == [200, 409]
    audit = review.client.get(f"/v1/review/items/{item}/audit", headers=reviewers[0]).json()
    assert sorted(e["outcome"] for e in audit) == ["applied", "conflict"]
    assert {e["actor"] for e in audit} == {"sato", "suzuki"}
    winner = next(e for e in audit if e["outcome"] == "applied")
    assert review.detail(item, reviewers[0])["item"]["version"] == 2
    assert published == ([f"approved-{item}"] if winner["action"] == "approve" else [])


def test_the_audit_log_keeps_actor_action_before_and_after_of_every_decision(review: ReviewApp) -> None:
    sato, admin = review.user("sato"), review.user("tanaka", "admin")
    with session_scope(review.sessions) as session:
        item = add_item(session, "引き継ぎシートはいつ作るの？", cause="job_fear").id
    review.decide(item, admin, action="assign", assignee="sato")
    review.decide(item, sato, action="relabel", root_cause="process")
    review.decide(item, sato, action="edit", answer="11月中に作成します。")
    review.decide(item, sato, action="assign", assignee="nobody")  # refused: not a reviewer
    audit = review.client.get(f"/v1/review/items/{item}/audit", headers=sato).json()
    steps = [(e["actor"], e["action"], e["outcome"], e["version"], e["before"], e["after"]) for e in audit]
    assert steps == [
        ("tanaka", "assign", "applied", 1, {"assignee": None}, {"assignee": "sato"}),
        ("sato", "relabel", "applied", 2, {"root_cause": None}, {"root_cause": "process"}),
        ("sato", "edit", "applied", 3, {"status": "pending", "answer": None},
         {"status": "approved", "answer": "11月中に作成します。"}),
    ]  # fmt: skip
    assert all(e["created_at"].endswith("Z") or "+" in e["created_at"] for e in audit)
    detail = review.detail(item, sato)
    assert detail["audit"] == audit and detail["root_cause"] == "process" and detail["item"]["assignee"] == "sato"


def test_a_retried_decision_with_the_same_idempotency_key_publishes_exactly_once(review: ReviewApp) -> None:
    sato = review.user("sato")
    item = review.item_of(review.ask(TRAINING)["id"])
    published: list[str] = []
    original = review.app.state.triage.approved.publish
    review.app.state.triage.approved.publish = lambda **kw: (published.append(kw["answer_id"]), original(**kw))[1]
    headers = {**sato, "Idempotency-Key": "approve-training-1"}
    first = review.decide(item, headers, action="approve", version=1)
    retry = review.decide(item, headers, action="approve", version=1)
    assert first.status_code == retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json()["replayed"] is True
    assert retry.json()["item"] == first.json()["item"]
    assert published == [f"approved-{item}"]
    audit = review.client.get(f"/v1/review/items/{item}/audit", headers=sato).json()
    assert [(e["action"], e["outcome"]) for e in audit] == [("approve", "applied")]
    other = review.decide(item, headers, action="reject", version=2, reason="別の決定")
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
    without_key = review.decide(item, sato, action="approve", version=1)
    assert without_key.status_code == 409  # no key: the stale version protects it


def test_one_decision_answers_the_whole_group_of_near_duplicates(review: ReviewApp) -> None:
    sato = review.user("sato")
    ids = [review.item_of(review.ask(q)["id"]) for q in ("ボーナスは減りますか？", "ボーナスって減るんですか？")]
    listed = review.client.get("/v1/review/items", headers=sato, params={"sort": "most_asked"}).json()["items"]
    assert listed[0]["group_ids"] == ids and listed[0]["group_size"] == 2
    detail = review.detail(ids[0], sato)
    assert [m["id"] for m in detail["group"]] == ids[1:] and detail["group"][0]["similarity"] >= 0.94
    decided = review.decide(ids[0], sato, action="edit", answer="賞与は減りません。", group=ids[1:]).json()
    assert decided["applied_to"] == ids and decided["published"] == [f"approved-{i}" for i in ids]
    member = review.detail(ids[1], sato)["item"]
    assert (member["status"], member["answered_by"]) == ("approved", ids[0])
    assert member["final_answer"] == "賞与は減りません。"
    assert review.ask("ボーナス減るんですか？")["answer"] == "賞与は減りません。"
    review.decide(ids[0], sato, action="withdraw", reason="見直し")
    assert review.detail(ids[1], sato)["item"]["status"] == "withdrawn"


def test_an_abstention_cannot_be_approved_as_is_but_can_be_answered_with_edit(review: ReviewApp) -> None:
    sato = review.user("sato")
    with session_scope(review.sessions) as session:
        item = add_item(session, "社食のメニューは変わりますか？", mode="abstain", cause="other").id
    refused = review.decide(item, sato, action="approve")
    assert refused.status_code == 422 and "edit" in refused.json()["error"]
    assert review.detail(item, sato)["item"]["version"] == 1  # the refused decision changed nothing
    assert review.decide(item, sato, action="edit", answer="社食は変わりません。").status_code == 200


def test_an_approved_answer_is_reused_without_an_llm_call_even_when_the_llm_classifies(
    indexed_settings: Settings, database_url: str, mock_llm: str
) -> None:
    overrides: dict[str, Any] = {"openai_base_url": mock_llm, "llm_model": "mock-llm", "classifier": "llm"}
    with review_app(indexed_settings, database_url, **overrides) as review:
        first = review.ask(COST)
        assert first["root_cause"]["classifier"] == "llm"
        assert review.decide(review.item_of(first["id"]), review.user("sato"), action="approve").status_code == 200
        httpx.delete(f"{mock_llm.removesuffix('/v1')}/mock/requests")
        reused = review.ask(COST_PARAPHRASE)
        assert reused["mode"] == "approved" and reused["root_cause"]["classifier"] == "local"
        assert reused["usage"]["llm_calls"] == 0 and _chat_calls(mock_llm) == 0


def test_reindexing_the_knowledge_folder_keeps_approved_faq_pages(review: ReviewApp) -> None:
    item = review.item_of(review.ask(TRAINING)["id"])
    assert review.decide(item, review.user("sato"), action="approve").status_code == 200
    with session_scope(review.sessions) as session:
        store, settings = review.app.state.knowledge.store, review.settings
        ingest_knowledge(session, store, knowledge_dir=settings.knowledge_dir, max_tokens=settings.chunk_max_tokens)
    page = review.client.get(f"/kb/approved-{item}")
    assert page.status_code == 200 and TRAINING in page.text
    assert f"/kb/approved-{item}" in review.client.get("/kb").text


def test_an_approval_whose_transaction_rolls_back_is_never_served(review: ReviewApp) -> None:
    item = review.item_of(review.ask(TRAINING)["id"])
    triage = review.app.state.triage
    for finish in ("rollback", "commit"):
        session = review.sessions()
        try:
            result = decisions.decide(
                session,
                sessions=review.sessions,
                item_id=item,
                decision=Approve(action="approve", version=1),
                reviewer=Reviewer("sato", "reviewer"),
                approved=triage.approved,
                labels=triage.classifier.taxonomy.ids,
            )
            assert result.published == [f"approved-{item}"]
            getattr(session, finish)()
        finally:
            session.close()
        reused = review.ask(TRAINING_PARAPHRASE)["mode"] == "approved"
        assert reused is (finish == "commit"), finish
