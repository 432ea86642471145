"""/v1/ask as JSON and as Server-Sent Events, and /v1/feedback, through the real app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.config import Settings
from service.db import session_scope
from service.main import create_app
from service.triage.models import Feedback
from tests.conftest import make_settings
from tests.test_api import wait_ready


@pytest.fixture
def client(indexed_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(indexed_settings.data_dir, database_url=f"sqlite:///{tmp_path / 'api.db'}")
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def events(response_text: str) -> list[tuple[str, dict[str, object]]]:
    parsed = []
    for block in response_text.strip().split("\n\n"):
        if block.startswith(":"):  # a keep-alive comment while the answer was being made
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


def test_ask_returns_an_answer_with_citations_root_cause_and_an_id(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "ボーナスは減りますか？", "source": "widget"}).json()
    assert set(body) >= {"id", "answer", "citations", "root_cause", "is_objection", "mode", "usage"}
    assert body["citations"][0]["url"].startswith("/kb/")
    assert body["root_cause"]["primary"] in {"job_fear", "security", "cost", "process", "other"}


def test_ask_streams_meta_then_deltas_then_done_with_the_same_text(client: TestClient) -> None:
    response = client.post(
        "/v1/ask", json={"question": "引き継ぎシートは誰が書くの？"}, headers={"accept": "text/event-stream"}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response.text)
    names = [name for name, _ in stream]
    assert names[0] == "meta" and names[-1] == "done" and names.count("delta") >= 2
    done = stream[-1][1]
    assert "".join(str(p["text"]) for n, p in stream if n == "delta") == done["answer"]
    assert done["id"] and done["citations"]


@pytest.mark.parametrize(("question", "message"), [("   ", "empty"), ("あ" * 2001, "2,000")])
def test_bad_questions_are_422_before_any_stream_starts(client: TestClient, question: str, message: str) -> None:
    for stream in (False, True):
        response = client.post("/v1/ask", json={"question": question, "stream": stream})
        assert response.status_code == 422 and message in response.json()["error"]


def test_feedback_with_a_comment_is_stored_for_reviewers(client: TestClient) -> None:
    answer = client.post("/v1/ask", json={"question": "予算はどこから出るの？"}).json()
    response = client.post("/v1/feedback", json={"id": answer["id"], "helpful": False, "comment": "金額が知りたい"})
    assert response.status_code == 200
    sessions = client.app.state.sessionmaker  # type: ignore[attr-defined]
    with session_scope(sessions) as session:
        stored = session.scalars(select(Feedback)).all()
        assert [(f.helpful, f.comment) for f in stored] == [(False, "金額が知りたい")]


def test_feedback_for_an_unknown_answer_is_a_404(client: TestClient) -> None:
    response = client.post("/v1/feedback", json={"id": "nope", "helpful": True})
    assert response.status_code == 404 and "nope" in response.json()["error"]
