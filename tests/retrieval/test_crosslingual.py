"""English questions about Japanese-only documents: keyword search reaches them through the translations."""

from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from service.retrieval.documents import load_documents
from service.retrieval.ingest import embed_and_store
from service.retrieval.lexical import Synonyms
from service.retrieval.service import KnowledgeIndex, search_passages
from service.retrieval.store import ChunkStore
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.helpers import write_doc

TRANSLATIONS = [["アンケート", "survey"], ["匿名", "anonymous"], ["給与", "salary"]]


@pytest.fixture
def store(tmp_path: Path, fake_embedder: HashedNgramEmbedder) -> Iterator[ChunkStore]:
    folder = tmp_path / "knowledge"
    # A Japanese-only article, and a document that has both language versions.
    write_doc(folder, "article-ja", "## 社内アンケート\n匿名で実施すると率直な意見が集まります。", doc_type="doc")
    write_doc(folder, "faq-pay-ja", "## Q: 給与は下がりますか？\n基本給は2年間維持されます。")
    write_doc(folder, "faq-pay-en", "## Q: Will my salary go down?\nBase pay is kept for two years.", lang="en")
    client = chromadb.PersistentClient(str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    chunk_store = ChunkStore(client, "knowledge", fake_embedder)
    chunk_store.open_for_writing()
    embed_and_store(chunk_store, load_documents(folder).documents, max_tokens=400, progress=None)
    yield chunk_store


def top_doc(store: ChunkStore, synonyms: Synonyms, question: str, **kwargs: str) -> str:
    index = KnowledgeIndex(store, synonyms)
    return search_passages(index, query=question, k=3, method="lexical", **kwargs)[0].doc_id  # type: ignore[arg-type]


def test_an_english_question_finds_a_japanese_only_document_through_the_translations(store: ChunkStore) -> None:
    question = "Should the staff survey be anonymous?"
    assert top_doc(store, Synonyms([], TRANSLATIONS), question) == "article-ja"
    with pytest.raises(IndexError):  # without them, keyword search has nothing to go on
        top_doc(store, Synonyms([]), question)


def test_a_question_on_a_document_with_a_version_in_its_language_is_matched_on_its_own_words(
    store: ChunkStore,
) -> None:
    # The Japanese version is not matched on the translated words: the English one answers in the asker's language.
    assert top_doc(store, Synonyms([], TRANSLATIONS), "Will my salary go down?") == "faq-pay-en"
    # Searching the Japanese documents only, the translations reach the Japanese version.
    assert top_doc(store, Synonyms([], TRANSLATIONS), "Will my salary go down?", lang="ja") == "faq-pay-ja"


def test_translations_are_only_added_when_asked_for() -> None:
    synonyms = Synonyms([["給与", "給料"]], [["給与", "salary"]])
    assert synonyms.expand("給料は？") == "給料は？ 給与"
    assert synonyms.expand("What about my salary?", across_languages=True) == "What about my salary? 給与"
    assert synonyms.expand("What about my salary?") == "What about my salary?"
