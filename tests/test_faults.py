"""What a client sees when the database goes away under a running service, or was never there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import main
from service.config import Settings
from service.main import create_app
from service.retrieval import ingest as ingest_module
from service.retrieval.chunking import chunk_document
from service.retrieval.documents import load_documents
from tests.conftest import make_settings
from tests.fakes import HashedNgramEmbedder
from tests.test_api import wait_ready
from tests.web.conftest import Relay

NEMAWASHI = str(Path(sys.executable).parent / "nemawashi")


def wait_for_reason(client: TestClient, words: str, seconds: float = 60) -> None:
    """Until /readyz gives a reason with these words (it answers 503 meanwhile)."""
    deadline = time.monotonic() + seconds
    while words not in (reason := client.get("/readyz").json()["reason"]):
        assert time.monotonic() < deadline, reason
        time.sleep(0.05)


def test_a_database_outage_makes_readyz_and_requests_say_503_with_a_reason(
    indexed_settings: Settings, postgres_url: str
) -> None:
    relay = Relay(5432)  # PostgreSQL reached through a relay we can cut
    relay.start()
    settings = make_settings(
        indexed_settings.data_dir,
        database_url=postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}"),
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        relay.stop()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "database" in ready.json()["reason"]
        response = client.post("/v1/feedback", json={"id": "x", "helpful": True})
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/json")
        assert "database is unavailable" in response.json()["error"]


def test_serve_with_a_wrong_database_url_says_so_in_one_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    env |= {"NEMAWASHI_DATA_DIR": str(tmp_path), "NEMAWASHI_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:1/none"}
    result = subprocess.run([NEMAWASHI, "serve"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 2
    assert "NEMAWASHI_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 4


@pytest.mark.parametrize("command", [["serve"], ["ingest"]])
def test_a_chroma_server_that_does_not_answer_is_named_in_one_message(tmp_path: Path, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEMAWASHI_", "OPENAI_"))}
    env |= {"NEMAWASHI_DATA_DIR": str(tmp_path), "NEMAWASHI_CHROMA_URL": "http://127.0.0.1:1"}
    result = subprocess.run([NEMAWASHI, *command], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 2
    assert "NEMAWASHI_CHROMA_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 6


def test_a_database_gone_while_the_index_loads_is_waited_for_and_the_service_becomes_ready(
    indexed_settings: Settings, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Relay(5432)
    relay.start()
    settings = make_settings(
        indexed_settings.data_dir,
        database_url=postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}"),
    )
    catch_up = main.catch_up_uploads

    def cut_first(*args: Any, **kwargs: Any) -> Any:
        if not cut:  # the database goes away just as the loader starts (a restart of PostgreSQL)
            cut.append(True)
            relay.stop()
        return catch_up(*args, **kwargs)

    cut: list[bool] = []
    monkeypatch.setattr(main, "LOADER_RETRY_S", (0.2,))
    monkeypatch.setattr(main, "catch_up_uploads", cut_first)
    with TestClient(create_app(settings)) as client:
        wait_for_reason(client, "waiting for the database")
        assert client.get("/readyz").status_code == 503
        relay.start()  # the database is back: the next attempt loads the index
        assert wait_ready(client, seconds=120)["status"] == "ready"
        assert client.post("/v1/search", json={"query": "引き継ぎ"}).status_code == 200
    relay.stop()


@pytest.mark.chroma_server
def test_a_chroma_server_gone_while_the_index_loads_is_waited_for_and_the_service_becomes_ready(
    tmp_path: Path, chroma_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Relay(int(chroma_server.rsplit(":", 1)[1]))  # the Chroma server reached through a relay we can cut
    relay.start()
    settings = make_settings(tmp_path, chroma_url=relay.url, collection="loader-outage")
    load = main._load_index

    def cut_first(*args: Any, **kwargs: Any) -> Any:
        if not cut:  # the Chroma server goes away just as the loader starts (a restart, a network cut)
            cut.append(True)
            relay.stop()
        return load(*args, **kwargs)

    cut: list[bool] = []
    monkeypatch.setattr(main, "LOADER_RETRY_S", (0.2,))
    monkeypatch.setattr(main, "_load_index", cut_first)
    with TestClient(create_app(settings, embedder=HashedNgramEmbedder())) as client:
        wait_for_reason(client, "waiting for the vector store")
        assert client.get("/readyz").status_code == 503
        relay.start()  # the server is back: the next attempt indexes the knowledge base and loads it
        assert wait_ready(client, seconds=120)["status"] == "ready"
        assert client.post("/v1/search", json={"query": "引き継ぎ"}).json()["hits"]
    relay.stop()


@pytest.mark.chroma_server
def test_a_first_indexing_cut_by_an_outage_is_finished_when_the_store_is_back(
    tmp_path: Path, chroma_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Relay(int(chroma_server.rsplit(":", 1)[1]))
    relay.start()
    settings = make_settings(tmp_path, chroma_url=relay.url, collection="first-indexing-outage")
    documents = load_documents(settings.knowledge_dir).documents
    expected = sum(len(chunk_document(doc, max_tokens=settings.chunk_max_tokens)) for doc in documents)
    embed = ingest_module.embed_and_store

    def cut_halfway(store: Any, docs: list[Any], **kwargs: Any) -> Any:
        if not cut and len(docs) > 1:  # half of the first indexing is stored, then the server goes away
            cut.append(True)
            embed(store, docs[: len(docs) // 2], **kwargs)
            relay.stop()
        return embed(store, docs, **kwargs)

    cut: list[bool] = []
    monkeypatch.setattr(main, "LOADER_RETRY_S", (0.2,))
    monkeypatch.setattr(ingest_module, "embed_and_store", cut_halfway)
    with TestClient(create_app(settings, embedder=HashedNgramEmbedder())) as client:
        wait_for_reason(client, "waiting for the vector store")
        relay.start()
        assert wait_ready(client, seconds=120)["chunks"] == expected  # the whole knowledge base, not the half
    relay.stop()
