"""The Chroma collection wrapper: a collection rebuilt by another store is found again, not reported missing."""

from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from service.retrieval.store import ChunkStore
from tests.fakes import HashedNgramEmbedder


def fill(store: ChunkStore, texts: list[str]) -> None:
    vectors = store.embedder.embed_passages(texts)
    metas = [{"doc_id": f"doc-{i}", "doc_hash": "h", "path": ""} for i in range(len(texts))]
    store.add([f"c{i}" for i in range(len(texts))], texts, metas, vectors)


def test_every_call_finds_a_collection_another_store_rebuilt_within_the_check_interval(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    embedder = HashedNgramEmbedder()
    reader, writer = ChunkStore(client, "knowledge", embedder), ChunkStore(client, "knowledge", embedder)
    fill(writer, ["給与は2年間維持されます", "顧客データはVDIからのみ"])
    assert reader.count() == 2  # checked now: the check is kept for a few seconds

    writer.reset()  # e.g. `ingest --rebuild` in the same process
    fill(writer, ["委託料は年間9,240万円", "説明会は毎月", "引き継ぎシートは担当者が書く"])

    assert reader.count() == 3
    assert [c.text for c in reader.get(["c2"])] == ["引き継ぎシートは担当者が書く"]
    assert set(reader.indexed_docs()) == {"doc-0", "doc-1", "doc-2"}
    query = np.asarray(embedder.embed_queries(["委託料"]))[0]
    assert reader.query(query, n=1, where=None)[0][0] == "c0"
    reader.delete_docs(["doc-1"])
    assert writer.count() == 2
