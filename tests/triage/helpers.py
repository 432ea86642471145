"""Builders for triage tests: a pipeline over the session's indexed knowledge base."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from service.auth.service import Reviewer
from service.bootstrap import Clients, build_triage, open_clients
from service.config import Settings
from service.db import session_scope
from service.review.decisions import decide
from service.review.models import ReviewItem
from service.review.schemas import Withdraw
from service.review.service import record_approved
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

    def approve(self, question: str, answer: str, *, lang: str = "ja", alternates: tuple[str, ...] = ()) -> int:
        """Approve an answer as a reviewer would (rows in SQL, then the store); returns the item id."""
        return record_approved(
            self.clients.sessionmaker,
            approved=self.triage.approved,
            labels=self.triage.classifier.taxonomy.ids,
            question=question,
            answer=answer,
            lang=lang,
            alternates=alternates,
        )

    def withdraw(self, item_id: int) -> None:
        """Withdraw an approved answer as a reviewer would."""
        with session_scope(self.clients.sessionmaker) as session:
            version = session.get(ReviewItem, item_id).version  # type: ignore[union-attr]
            decide(
                session,
                sessions=self.clients.sessionmaker,
                item_id=item_id,
                decision=Withdraw(action="withdraw", version=version, reason="test"),
                reviewer=Reviewer(name="test", role="admin"),
                approved=self.triage.approved,
                labels=self.triage.classifier.taxonomy.ids,
            )


def make_pipeline(indexed: Settings, database_url: str, **overrides: object) -> Pipeline:
    """A pipeline on the indexed knowledge base, its own database, and an empty approved-answers collection."""
    values: dict[str, object] = {"database_url": database_url, "llm_timeout_s": 2.0, "llm_max_retries": 1}
    values.update(overrides)
    settings = make_settings(indexed.data_dir, **values)
    clients = open_clients(settings)
    clients.knowledge.store.client.get_or_create_collection("knowledge-approved", embedding_function=None)
    clients.knowledge.store.client.delete_collection("knowledge-approved")
    return Pipeline(settings, clients, build_triage(settings, clients))
