"""The Chroma collection of knowledge chunks: embedded PersistentClient or a Chroma server."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from service.config import Settings
from service.errors import NotReady, VectorStoreUnavailable
from service.retrieval.embeddings import Embedder, Vectors

REBUILD_HINT = "run `nemawashi ingest --rebuild` to re-index with the current embedder"


def make_chroma_client(settings: Settings) -> ClientAPI:
    """HttpClient when NEMAWASHI_CHROMA_URL is set, else a PersistentClient in the data dir. Telemetry off.

    VectorStoreUnavailable naming the setting when the Chroma server does not answer (the client connects at once)."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except ValueError as exc:  # chromadb's "Could not connect to a Chroma server. Are you sure it is running?"
            raise VectorStoreUnavailable(
                f"cannot reach the Chroma server at {settings.chroma_url} (NEMAWASHI_CHROMA_URL): {exc} / "
                "Chromaサーバーに接続できません（NEMAWASHI_CHROMA_URL を確認してください）"
            ) from exc
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: str
    text: str
    meta: dict[str, Any]


CHECK_TTL_S = 5.0
T = TypeVar("T")


class ChunkStore:
    """One Chroma collection that remembers which embedder and dimension built it."""

    def __init__(self, client: ClientAPI, name: str, embedder: Embedder) -> None:
        self._client = client
        self._name = name
        self._embedder = embedder
        self._checked: tuple[float, Any] | None = None  # (when, collection): checked once per CHECK_TTL_S

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def client(self) -> ClientAPI:
        return self._client

    def _collection(self, *, create: bool) -> Any:
        if create:
            # Never Chroma's default embedding function (it downloads a model): we pass vectors ourselves.
            return self._client.get_or_create_collection(
                self._name,
                embedding_function=None,
                metadata={"hnsw:space": "cosine", "embedder": self._embedder.name, "dim": self._embedder.dim},
            )
        try:
            return self._client.get_collection(self._name, embedding_function=None)
        except (NotFoundError, ValueError) as exc:
            raise NotReady(f"the knowledge base is not indexed yet: {REBUILD_HINT.replace(' --rebuild', '')}") from exc

    def exists(self) -> bool:
        """True when the collection exists (it may still be empty)."""
        try:
            self._client.get_collection(self._name, embedding_function=None)
        except (NotFoundError, ValueError):
            return False
        return True

    def check_embedder(self) -> Any:
        """The collection, if it was built by the current embedder; NotReady naming the fix otherwise.

        The answer is kept for CHECK_TTL_S, so a search does not pay a round trip to Chroma for it every time; a
        collection another process rebuilt meanwhile is noticed by `_call` (it checks again and retries once)."""
        if self._checked is not None and time.monotonic() - self._checked[0] < CHECK_TTL_S:
            return self._checked[1]
        collection = self._collection(create=False)
        meta = collection.metadata or {}
        built_by, dim = meta.get("embedder"), meta.get("dim")
        if built_by != self._embedder.name or dim != self._embedder.dim:
            raise NotReady(
                f"the index was built with {built_by} ({dim} dims) but the service is configured for "
                f"{self._embedder.name} ({self._embedder.dim} dims): {REBUILD_HINT}",
                detail={"index_embedder": built_by, "configured_embedder": self._embedder.name},
            )
        self._checked = (time.monotonic(), collection)
        return collection

    def reset(self) -> None:
        """Drop the collection (a rebuild starts from nothing)."""
        self._checked = None
        with contextlib.suppress(NotFoundError, ValueError):  # absent already
            self._client.delete_collection(self._name)

    def open_for_writing(self) -> Any:
        collection = self._collection(create=True)
        self.check_embedder()
        return collection

    def _call(self, run: Callable[[Any], T]) -> T:
        """run(collection) on the checked collection; when the collection was dropped or rebuilt since it was checked
        (by another store or process), check again and run once more."""
        try:
            return run(self.check_embedder())
        except (NotFoundError, ValueError):
            self._checked = None
            return run(self.check_embedder())

    def indexed_docs(self) -> dict[str, tuple[str, str]]:
        """doc_id → (content hash, knowledge file path) of what is indexed now."""
        got = self._call(lambda c: c.get(include=["metadatas"]))
        return {m["doc_id"]: (m["doc_hash"], m.get("path", "")) for m in got["metadatas"] or []}

    def delete_docs(self, doc_ids: list[str]) -> None:
        if doc_ids:
            self._call(lambda c: c.delete(where={"doc_id": {"$in": doc_ids}}))

    def add(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]], vectors: Vectors) -> None:
        collection = self.open_for_writing()
        for start in range(0, len(ids), 500):
            end = start + 500
            collection.upsert(
                ids=ids[start:end],
                documents=texts[start:end],
                metadatas=metas[start:end],
                embeddings=vectors[start:end],
            )

    def all_chunks(self) -> list[StoredChunk]:
        got = self._call(lambda c: c.get(include=["documents", "metadatas"]))
        return [
            StoredChunk(cid, text or "", dict(meta or {}))
            for cid, text, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        ]

    def get(self, ids: list[str]) -> list[StoredChunk]:
        """Stored items by id (missing ids are left out)."""
        got = self._call(lambda c: c.get(ids=ids, include=["documents", "metadatas"]))
        return [
            StoredChunk(cid, text or "", dict(meta or {}))
            for cid, text, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        ]

    def count(self) -> int:
        return int(self._call(lambda c: c.count()))

    def query(self, vector: Vectors, *, n: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) best first."""
        return self.query_many([vector], n=n, where=where)[0]

    def query_many(
        self, vectors: list[Vectors] | Vectors, *, n: int, where: dict[str, Any] | None
    ) -> list[list[tuple[str, float]]]:
        """query() for each vector, in one call to Chroma (a bulk job's batch pays one round trip, not one each)."""
        if len(vectors) == 0:
            return []

        def run(collection: Any) -> Any:
            return collection.query(
                query_embeddings=[np.asarray(v, dtype=np.float32) for v in vectors],
                n_results=n,
                where=where,
                include=["distances"],
            )

        result = self._call(run)
        distances = result["distances"] or [[] for _ in result["ids"]]
        return [
            [(cid, 1.0 - float(d)) for cid, d in zip(ids, dists, strict=True)]
            for ids, dists in zip(result["ids"], distances, strict=True)
        ]
