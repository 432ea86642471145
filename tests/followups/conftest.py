"""The real app on a fake embedder (no e5 model): follow-up links are plumbing, not retrieval quality."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.bootstrap import open_clients
from service.config import Settings
from tests.fakes import HashedNgramEmbedder
from tests.review.helpers import REVIEW_FLOW, ReviewApp, review_app


@pytest.fixture(scope="session")
def fake_indexed(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The sample knowledge base indexed once with the fake embedder, for the app's first start to skip."""
    from service.db import session_scope
    from service.retrieval.ingest import ingest_knowledge
    from tests.conftest import KNOWLEDGE, make_settings

    settings = make_settings(tmp_path_factory.mktemp("fake-indexed"))
    clients = open_clients(settings, embedder=HashedNgramEmbedder())
    with session_scope(clients.sessionmaker) as session:
        store, limit = clients.knowledge.store, settings.chunk_max_tokens
        ingest_knowledge(session, store, knowledge_dir=KNOWLEDGE, max_tokens=limit)
    clients.close()
    return settings


@pytest.fixture
def asker_app(fake_indexed: Settings, database_url: str) -> Iterator[ReviewApp]:
    """The whole service (SQLite and PostgreSQL) answering with the fake embedder; FAQ answers off (REVIEW_FLOW)."""
    with review_app(fake_indexed, database_url, embedder=HashedNgramEmbedder(), **REVIEW_FLOW) as running:
        yield running


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]
