"""The sample knowledge base on the fake embedder (no e5 model) and the mock LLM in a thread, for the LangChain
components: these tests are about plumbing and contracts, not retrieval quality."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.bootstrap import open_clients
from service.config import Settings
from tests.conftest import KNOWLEDGE, make_settings
from tests.fakes import HashedNgramEmbedder
from tests.review.helpers import REVIEW_FLOW


@pytest.fixture(scope="session")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the sample knowledge base indexed once by the fake embedder; tests work on copies."""
    from service.db import session_scope
    from service.retrieval.ingest import ingest_knowledge

    settings = make_settings(tmp_path_factory.mktemp("lc-indexed"))
    clients = open_clients(settings, embedder=HashedNgramEmbedder())
    with session_scope(clients.sessionmaker) as session:
        store, limit = clients.knowledge.store, settings.chunk_max_tokens
        ingest_knowledge(session, store, knowledge_dir=KNOWLEDGE, max_tokens=limit)
    clients.close()
    return settings.data_dir


def copy_settings(kb_dir: Path, target: Path, **overrides: Any) -> Settings:
    """Settings on a copy of the indexed data dir (its own vector store lock and database)."""
    shutil.copytree(kb_dir, target)
    return make_settings(target, **{"reconcile_interval_s": 0, **REVIEW_FLOW, **overrides})


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    """The mock LLM in a thread on a free loopback port."""
    from service.llm.mock_server import running_mock

    with running_mock() as url:
        yield url


@pytest.fixture(scope="module")
def served(kb_dir: Path, llm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The real app on the fake embedder served by uvicorn on loopback; yields its base URL and the app."""
    from tests.servers import served_app

    settings = copy_settings(kb_dir, tmp_path_factory.mktemp("lc-served") / "data", openai_base_url=llm_url)
    with served_app(settings) as running:
        yield running.url, running.app
