"""Builders for triage tests: a pipeline over the session's indexed knowledge base."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from service.bootstrap import Clients, build_triage, open_clients
from service.config import Settings
from service.db import session_scope
from service.review.models import ReviewItem
from service.triage.models import Answer, ClassificationRow, Question
from service.triage.service import Triage
from tests.conftest import make_settings


@dataclass
class Pipeline:
    settings: Settings
    clients: Clients
    triage: Triage

    def stored(self, public_id: str) -> tuple[Question, Answer, ClassificationRow, ReviewItem]:
        with session_scope(self.clients.sessionmaker) as session:
            question = session.scalars(select(Question).where(Question.public_id == public_id)).one()
            answer = session.scalars(select(Answer).where(Answer.question_id == question.id)).one()
            label = session.scalars(select(ClassificationRow).where(ClassificationRow.question_id == question.id)).one()
            item = session.scalars(select(ReviewItem).where(ReviewItem.question_id == question.id)).one()
            return question, answer, label, item


def make_pipeline(indexed: Settings, database_url: str, **overrides: object) -> Pipeline:
    """A pipeline on the indexed knowledge base, its own database, and an empty approved-answers collection."""
    values: dict[str, object] = {"database_url": database_url, "llm_timeout_s": 2.0, "llm_max_retries": 1}
    values.update(overrides)
    settings = make_settings(indexed.data_dir, **values)
    clients = open_clients(settings)
    clients.knowledge.store.client.get_or_create_collection("knowledge-approved", embedding_function=None)
    clients.knowledge.store.client.delete_collection("knowledge-approved")
    return Pipeline(settings, clients, build_triage(settings, clients))
