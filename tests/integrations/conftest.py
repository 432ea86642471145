"""The sample knowledge base on the fake embedder (no e5 model) and the mock LLM in a thread, for the LangChain
components: these tests are about plumbing and contracts, not retrieval quality."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.bootstrap import Clients, open_clients
from service.config import Settings
from tests.conftest import KNOWLEDGE, free_port, make_settings
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
    import uvicorn

    from service.main import create_app

    settings = copy_settings(kb_dir, tmp_path_factory.mktemp("lc-served") / "data", openai_base_url=llm_url)

    def fake_clients(settings: Settings, *, embedder: object = None) -> Clients:
        return open_clients(settings, embedder=HashedNgramEmbedder())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("service.main.open_clients", fake_clients)
        app = create_app(settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="nemawashi-test", daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        try:
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert thread.is_alive() and time.monotonic() < deadline, "the app did not get ready"
                time.sleep(0.1)
            yield base, app
        finally:
            server.should_exit = True
            thread.join(timeout=15)
