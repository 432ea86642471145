"""Test doubles for the stateful adapters: fast, deterministic, with the real protocols' semantics."""

from __future__ import annotations

import hashlib

import numpy as np

from service.retrieval.embeddings import Vectors

FAKE_DIM = 384  # multilingual-e5-small's dimension, so stores and indexes see the usual shape


class HashedNgramEmbedder:
    """An Embedder from hashed character 1–3-grams: unit vectors, identical across runs and processes.

    Texts that share characters land close together, which is enough for plumbing tests; it knows nothing
    about meaning, so tests of retrieval or grouping quality keep the real model (and are marked slow).
    """

    name = "fake/hashed-char-ngrams"
    dim = FAKE_DIM

    def embed_passages(self, texts: list[str]) -> Vectors:
        return np.vstack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> Vectors:
        return self._vector(text)

    def embed_queries(self, texts: list[str]) -> Vectors:
        return self.embed_passages(texts)

    def _vector(self, text: str) -> Vectors:
        vector = np.zeros(self.dim, np.float32)
        folded = text.casefold()
        for n in (1, 2, 3):
            for i in range(len(folded) - n + 1):
                digest = hashlib.blake2b(folded[i : i + n].encode(), digest_size=8).digest()
                vector[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0:  # empty text: a fixed unit vector, as a real model also returns one
            vector[0], norm = 1.0, 1.0
        return vector / norm
