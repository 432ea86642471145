"""The fake embedder keeps the Embedder contract the store and search rely on."""

from __future__ import annotations

import numpy as np

from service.retrieval.embeddings import Embedder
from tests.fakes import FAKE_DIM, HashedNgramEmbedder


def test_the_fake_embedder_returns_unit_vectors_of_the_real_models_dimension(
    fake_embedder: HashedNgramEmbedder,
) -> None:
    embedder: Embedder = fake_embedder
    passages = embedder.embed_passages(["基本給は2年間維持されます。", "Base pay is kept.", ""])
    assert passages.shape == (3, FAKE_DIM) and embedder.dim == FAKE_DIM
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0)
    assert embedder.embed_queries([]).shape == (0, FAKE_DIM)


def test_the_fake_embedder_gives_the_same_vector_for_the_same_text_in_every_instance() -> None:
    first, second = HashedNgramEmbedder(), HashedNgramEmbedder()
    assert np.array_equal(first.embed_query("給料は下がりますか？"), second.embed_query("給料は下がりますか？"))
    assert np.array_equal(first.embed_query("給料"), first.embed_passages(["給料"])[0])


def test_texts_sharing_characters_are_closer_than_unrelated_ones(fake_embedder: HashedNgramEmbedder) -> None:
    query = fake_embedder.embed_query("顧客データは安全？")
    near, far = fake_embedder.embed_passages(["顧客データは安全ですか？", "Base pay is kept for two years."])
    assert float(query @ near) > float(query @ far) + 0.3
