"""Builders for review tests: the real app on its own database, users with tokens, items as the pipeline stores them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.auth import service as auth
from service.auth.sessions import start_session
from service.config import Settings
from service.db import session_scope
from service.main import create_app
from service.retrieval.embeddings import Embedder
from service.review.models import ReviewItem
from service.review.service import SqlReviewQueue
from service.triage.classifier import Classification
from service.triage.models import Answer, Question
from service.triage.service import store_for_review
from tests.conftest import make_settings
from tests.test_api import wait_ready

# Questions with paraphrases close enough (e5 cosine ≥ 0.97) for /v1/ask to reuse an approved answer.
# The review flow under test: drafts that reviewers approve and that paraphrases then reuse. Curated FAQ answers
# are switched off so that these questions (which the FAQ also covers) are drafted.
REVIEW_FLOW: dict[str, float] = {"faq_min_similarity": 1.0, "faq_agree_min_similarity": 1.0}
COST = "BRIDGEの費用は全部でいくらかかりますか？"
COST_PARAPHRASE = "BRIDGEにかかる費用は、全部でいくらですか？"  # "トータルコスト" is a word COST does not say
TRAINING = "リスキリング研修はいつ始まり、どんな内容ですか？"
TRAINING_PARAPHRASE = "リスキリング研修の内容とスケジュールを教えてください。"


def browser_session(sessions: sessionmaker[Session], token: str) -> str:
    """What the sign-in form puts in the login cookie for this token: a new session's id."""
    with session_scope(sessions) as session:
        return start_session(session, token=token, hours=1)


@dataclass
class ReviewApp:
    app: FastAPI
    client: TestClient
    settings: Settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.app.state.sessionmaker  # type: ignore[no-any-return]

    def user(self, name: str, role: str = "reviewer") -> dict[str, str]:
        """A new user's Authorization header."""
        with session_scope(self.sessions) as session:
            _, token = auth.add_user(session, name=name, role=role)
        return {"Authorization": f"Bearer {token}"}

    def ask(self, question: str, **body: Any) -> dict[str, Any]:
        response = self.client.post("/v1/ask", json={"question": question, **body})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def item_of(self, answer_id: str) -> int:
        with session_scope(self.sessions) as session:
            question = session.query(Question).filter_by(public_id=answer_id).one()
            return session.query(ReviewItem).filter_by(question_id=question.id).one().id

    def detail(self, item_id: int, headers: dict[str, str]) -> dict[str, Any]:
        response = self.client.get(f"/v1/review/items/{item_id}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def decide(self, item_id: int, headers: dict[str, str], **decision: Any) -> Any:
        if decision.get("action") == "approve":
            decision.setdefault("confirm_extract", True)  # most drafts here are excerpts (no LLM in tests)
        if "version" not in decision:
            decision["version"] = self.detail(item_id, headers)["item"]["version"]
        return self.client.post(f"/v1/review/items/{item_id}/decisions", headers=headers, json=decision)


@contextmanager
def review_app(
    indexed: Settings, database_url: str, *, embedder: Embedder | None = None, **overrides: Any
) -> Iterator[ReviewApp]:
    """The whole service on the indexed knowledge base, its own database and an empty approved-answers collection;
    the configured embedder unless handed another."""
    collection = f"approved-{uuid.uuid4().hex[:8]}"
    values: dict[str, Any] = {
        "database_url": database_url,
        "approved_collection": collection,
        "llm_timeout_s": 5.0,
        "reconcile_interval_s": 0,  # reconcile at start only: tests that call it themselves see what it did
        **REVIEW_FLOW,
    }
    values.update(overrides)
    settings = make_settings(indexed.data_dir, **values)
    app = create_app(settings, embedder=embedder)
    with TestClient(app) as client:
        wait_ready(client)
        try:
            yield ReviewApp(app, client, settings)
        finally:
            app.state.knowledge.store.client.get_or_create_collection(collection, embedding_function=None)
            app.state.knowledge.store.client.delete_collection(collection)


def citation(doc_id: str, n: int = 1) -> dict[str, Any]:
    return {
        "n": n,
        "doc_id": doc_id,
        "chunk_id": f"{doc_id}#0",
        "title": doc_id,
        "url": f"/kb/{doc_id}",
        "snippet": "…",
        "score": 0.9,
    }


def add_item(
    session: Session,
    text: str,
    *,
    confidence: float = 0.8,
    cause: str = "job_fear",
    source: str = "widget",
    department: str | None = "営業部",
    at: datetime | None = None,
    mode: str = "extractive",
    lang: str = "ja",
    urgent: bool = False,
) -> ReviewItem:
    """A question, its draft and classification, and its pending review item, stored as the pipeline does."""
    draft = "回答の下書きです。[1]" if mode != "abstain" else "PMOに回送しました。"
    question = store_for_review(
        session,
        Question(text=text, lang=lang, source=source, department=department, created_at=at or datetime.now(UTC)),
        Classification(cause, None, confidence, cause != "other", f"「{text[:20]}」", "local"),
        answer=Answer(
            mode=mode,
            text=draft,
            citations=[citation("faq-job-01-ja")] if mode != "abstain" else [],
            flags=[],
            usage={},
            latency_ms=5,
        ),
        queue=SqlReviewQueue(),
        urgent=urgent,
    )
    return session.scalars(select(ReviewItem).where(ReviewItem.question_id == question.id)).one()
