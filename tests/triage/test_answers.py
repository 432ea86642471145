"""What staff get with no LLM: curated FAQ answers, off-topic questions sent on, follow-ups, through /v1/ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.config import PROJECT_ROOT, Settings
from service.db import session_scope
from service.main import create_app
from service.review.models import ReviewItem
from service.triage.faq import load_faq
from service.triage.models import Question
from tests.conftest import make_settings
from tests.test_api import wait_ready

FAQ = {entry.doc_id: entry for entry in load_faq(PROJECT_ROOT / "knowledge")}


@pytest.fixture
def client(indexed_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(indexed_settings.data_dir, database_url=f"sqlite:///{tmp_path / 'answers.db'}")
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def ask(client: TestClient, question: str, **extra: object) -> dict[str, object]:
    response = client.post("/v1/ask", json={"question": question, "source": "widget", **extra})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def stored_question(client: TestClient, public_id: str) -> tuple[Question, ReviewItem]:
    with session_scope(client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
        question = session.scalars(select(Question).where(Question.public_id == public_id)).one()
        item = session.scalars(select(ReviewItem).where(ReviewItem.question_id == question.id)).one()
        session.expunge_all()
        return question, item


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("今日の天気は？", "担当チーム（PMO）に引き継ぎました"),
        ("年末調整の書類はいつ出すの？", "担当チーム（PMO）に引き継ぎました"),
        ("How do I reset my VPN password?", "project team"),
    ],
)
def test_an_off_topic_question_is_sent_to_the_project_team_not_answered_with_quotes(
    client: TestClient, question: str, says: str
) -> None:
    body = ask(client, question)
    assert body["mode"] == "abstain"
    assert says in str(body["answer"]) and body["citations"] == []
    _, item = stored_question(client, str(body["id"]))
    assert item.priority == "high"  # in front of the project team first


def test_a_question_an_faq_entry_answers_gets_the_curated_answer_as_written_without_an_llm(client: TestClient) -> None:
    body = ask(client, "再配置ってどうやって決まるんですか？")
    assert body["mode"] == "faq" and body["status"] == "approved"
    assert body["answer"] == FAQ["faq-job-05-ja"].answer
    [citation] = body["citations"]  # type: ignore[misc]
    assert citation["doc_id"] == "faq-job-05-ja" and citation["url"] == "/kb/faq-job-05-ja?passage=0#passage"
    assert body["usage"]["llm_calls"] == 0  # type: ignore[index]


def test_an_english_asker_gets_the_english_faq_answer(client: TestClient) -> None:
    body = ask(client, "Can I say no to the new role I am offered?")
    assert body["mode"] == "faq"
    assert body["answer"] == FAQ["faq-job-09-en"].answer
    assert body["citations"][0]["doc_id"] == "faq-job-09-en"  # type: ignore[index]


def test_when_no_entry_is_sure_the_close_faq_questions_are_offered_and_asking_one_gets_its_answer(
    client: TestClient,
) -> None:
    body = ask(client, "営業支援システムの入力ルールは誰が決めますか？")
    assert body["mode"] != "abstain"
    related = {r["doc_id"]: r for r in body["related"]}  # type: ignore[attr-defined]
    assert "faq-proc-01-ja" in related and related["faq-proc-01-ja"]["url"] == "/kb/faq-proc-01-ja"
    chosen = ask(client, related["faq-proc-01-ja"]["question"])
    assert chosen["mode"] == "faq" and "社内担当者が記入" in str(chosen["answer"])


def test_an_offline_excerpt_is_one_clean_paragraph_not_a_table_or_a_cut_sentence(client: TestClient) -> None:
    body = ask(client, "What is the first-response time target for inbound inquiries?")
    assert body["mode"] == "extractive"
    answer = str(body["answer"])
    assert "|" not in answer and not any(line.lstrip().startswith("ー") for line in answer.splitlines())
    assert answer.rstrip().endswith("]") and answer.count("[") == 1
    assert body["citations"] and body["citations"][0]["doc_id"].endswith("-en")  # type: ignore[index]


def test_a_follow_up_is_searched_with_the_previous_question_and_both_forms_are_stored(client: TestClient) -> None:
    conversation = "conv-follow-up-1"
    first = ask(client, "再配置ってどうやって決まるんですか？", conversation_id=conversation)
    history = [{"id": first["id"], "question": "再配置ってどうやって決まるんですか？", "answer": first["answer"]}]
    follow = ask(client, "それっていつから？", conversation_id=conversation, history=history)
    assert "再配置" in str(follow["standalone_question"])
    assert follow["mode"] != "abstain"
    cited = {c["doc_id"] for c in follow["citations"]}  # type: ignore[attr-defined]
    assert cited & {"faq-job-05-ja", "plan-schedule-ja", "faq-gen-03-ja"}
    question, _ = stored_question(client, str(follow["id"]))
    assert question.text == "それっていつから？" and "再配置" in str(question.standalone_text)
    assert question.conversation_id == conversation
    alone = ask(client, "それっていつから？")
    assert alone["standalone_question"] is None


def test_a_short_question_on_another_topic_is_not_joined_to_the_previous_one(client: TestClient) -> None:
    """「今日の天気は？」 right after an FAQ question is a new topic: it was searched with the previous question and
    answered with that question's FAQ answer. A short follow-up that leans on the previous turn is still joined."""
    conversation = "conv-new-topic-1"
    question = "異動を断ったら評価に影響しますか？"
    first = ask(client, question, conversation_id=conversation)
    history = [{"id": first["id"], "question": question, "answer": first["answer"]}]
    weather = ask(client, "今日の天気は？", conversation_id=conversation, history=history)
    assert weather["standalone_question"] is None and weather["mode"] == "abstain"
    follow = ask(client, "上限はあるの？", conversation_id=conversation, history=history)
    assert question in str(follow["standalone_question"])


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"conversation_id": "conv-12345678", "history": [{"question": "q"}] * 5}, "history"),
        ({"conversation_id": "conv-12345678", "history": "not a list"}, "history"),
        ({"conversation_id": "conv-12345678", "history": [{"answer": "no question"}]}, "history.0.question"),
        ({"conversation_id": "conv-12345678", "history": [{"question": "x" * 2001}]}, "history.0.question"),
        ({"history": [{"question": "q"}]}, "conversation_id"),
        ({"conversation_id": "a b"}, "conversation_id"),
    ],
)
def test_bad_history_is_a_422_naming_the_field(client: TestClient, extra: dict[str, object], field: str) -> None:
    response = client.post("/v1/ask", json={"question": "それは？", **extra})
    assert response.status_code == 422
    assert field in response.json()["error"]


def test_history_from_another_conversation_is_refused(client: TestClient) -> None:
    theirs = ask(client, "ボーナスは減りますか？", conversation_id="conv-someone-else")
    response = client.post(
        "/v1/ask",
        json={
            "question": "それって本当？",
            "conversation_id": "conv-mine-0001",
            "history": [{"id": theirs["id"], "question": "ボーナスは減りますか？"}],
        },
    )
    assert response.status_code == 422 and "history[0].id" in response.json()["error"]
