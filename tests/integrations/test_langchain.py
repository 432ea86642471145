"""The LangChain components in process: the retriever, the embeddings, the pipeline as a Runnable, an LCEL chain."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from service.db import session_scope
from service.errors import BadInput
from service.integrations.langchain import (
    KnowledgeBaseRetriever,
    LocalNemawashi,
    NemawashiEmbeddings,
    TriageInput,
    TriageRunnable,
    open_local,
)
from service.triage.models import Question
from service.triage.schemas import AskResponse
from tests.fakes import HashedNgramEmbedder
from tests.integrations.conftest import copy_settings

METADATA = {"doc_id", "url", "title", "section", "lang", "type", "score", "dense_score", "lexical_score"}
COST = "BRIDGEの費用は全部でいくらかかりますか？"


@pytest.fixture(scope="module")
def local(kb_dir: Path, llm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNemawashi]:
    settings = copy_settings(kb_dir, tmp_path_factory.mktemp("lc-local") / "data", openai_base_url=llm_url)
    with open_local(settings, embedder=HashedNgramEmbedder()) as opened:
        yield opened


def kb_doc_ids(local: LocalNemawashi) -> set[str]:
    return {c.meta["doc_id"] for c in local.clients.knowledge.chunks.values()}


def stored_source(local: LocalNemawashi, answer_id: str) -> str:
    with session_scope(local.clients.sessionmaker) as session:
        return str(session.query(Question).filter_by(public_id=answer_id).one().source)


def test_the_retriever_returns_the_api_search_as_documents_with_their_source(local: LocalNemawashi) -> None:
    docs = local.retriever(k=4).invoke(COST)
    assert len(docs) == 4 and all(isinstance(d, Document) and d.page_content for d in docs)
    for doc in docs:
        meta = doc.metadata
        assert {
            "doc_id",
            "url",
            "title",
            "section",
            "lang",
            "type",
            "score",
            "dense_score",
            "lexical_score",
        } <= meta.keys()
        assert meta["url"].startswith(f"/kb/{meta['doc_id']}?passage=") and meta["doc_id"] in kb_doc_ids(local)
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)


def test_the_retriever_filters_by_type_and_language_by_default_and_per_call(local: LocalNemawashi) -> None:
    faq_ja = local.retriever(k=5, types=["faq"], lang="ja").invoke(COST)
    assert faq_ja and {(d.metadata["type"], d.metadata["lang"]) for d in faq_ja} == {("faq", "ja")}
    english_plans = local.retriever(k=5).invoke(COST, types=["plan"], lang="en", k=2)
    assert len(english_plans) == 2 and {(d.metadata["type"], d.metadata["lang"]) for d in english_plans} == {
        ("plan", "en")
    }


def test_the_async_retriever_finds_what_the_sync_one_finds(local: LocalNemawashi) -> None:
    retriever = local.retriever(k=3, lang="ja")
    sync_ids = [d.id for d in retriever.invoke(COST)]
    async_ids = [d.id for d in asyncio.run(retriever.ainvoke(COST))]
    assert sync_ids and async_ids == sync_ids


def test_a_misspelt_filter_or_an_empty_query_says_what_to_fix(local: LocalNemawashi) -> None:
    with pytest.raises(BadInput, match="unknown document type"):
        local.retriever().invoke(COST, types=["faqs"])
    with pytest.raises(BadInput, match="query is empty"):
        local.retriever().invoke("   ")


class PrefixedEmbedder:
    """Queries and passages embed differently (as e5's prefixes make them), so a mix-up shows."""

    name, dim = "prefixed", 2

    def embed_passages(self, texts: list[str]) -> Any:
        return np.array([[1.0, 0.0]] * len(texts), np.float32)

    def embed_query(self, text: str) -> Any:
        return np.array([0.0, 1.0], np.float32)

    def embed_queries(self, texts: list[str]) -> Any:
        return np.array([[0.0, 1.0]] * len(texts), np.float32)


def test_the_embeddings_keep_the_query_and_passage_forms_apart() -> None:
    embeddings = NemawashiEmbeddings(PrefixedEmbedder())
    assert embeddings.embed_documents(["a", "b"]) == [[1.0, 0.0], [1.0, 0.0]]
    assert embeddings.embed_query("a") == [0.0, 1.0]
    assert asyncio.run(embeddings.aembed_query("a")) == [0.0, 1.0]


def test_the_embeddings_give_the_vectors_the_index_was_built_with(local: LocalNemawashi) -> None:
    text = "リスキリング研修"
    vector = local.embeddings().embed_query(text)
    assert np.allclose(vector, HashedNgramEmbedder().embed_query(text))


def test_the_runnable_answers_like_the_api_and_stores_the_question_for_review(local: LocalNemawashi) -> None:
    answer = local.runnable().invoke(COST)
    assert isinstance(answer, AskResponse) and answer.mode == "llm" and answer.status == "draft"
    assert answer.citations and {c.doc_id for c in answer.citations} <= kb_doc_ids(local)
    assert answer.usage.llm_calls >= 1 and answer.root_cause.primary == "cost"
    assert stored_source(local, answer.id) == "langchain"


def test_the_runnable_streams_the_text_then_the_stored_response(local: LocalNemawashi) -> None:
    parts = list(local.runnable().stream({"question": COST, "department": "営業部"}))
    *deltas, final = parts
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, AskResponse) and "".join(deltas) == final.answer
    assert stored_source(local, final.id) == "langchain"


def test_the_runnable_streams_asynchronously_the_text_as_it_is_drafted_then_the_stored_response(
    local: LocalNemawashi,
) -> None:
    def stored_questions() -> int:
        with session_scope(local.clients.sessionmaker) as session:
            return session.query(Question).count()

    before = stored_questions()
    stored_at_first_delta: list[int] = []

    async def collect() -> list[str | AskResponse]:
        parts: list[str | AskResponse] = []
        async for part in local.runnable().astream(COST):
            if not parts:  # the first piece of text comes while the answer is still being written
                stored_at_first_delta.append(stored_questions())
            parts.append(part)
        return parts

    *deltas, final = asyncio.run(collect())
    assert stored_at_first_delta == [before] and stored_questions() == before + 1
    assert isinstance(final, AskResponse) and final.mode == "llm" and final.usage.llm_calls >= 1
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert "".join(d for d in deltas if isinstance(d, str)) == final.answer
    assert stored_source(local, final.id) == "langchain"


def test_the_runnable_batches_and_takes_survey_comments(local: LocalNemawashi) -> None:
    runnable: TriageRunnable = local.runnable()
    comment = TriageInput(question="AIに仕事を奪われてクビになるのが不安です。", survey=True)
    first, second = runnable.batch([COST, comment])
    assert first.id != second.id and second.root_cause.primary == "job_fear" and second.is_objection
    assert stored_source(local, second.id) == "survey"
    with pytest.raises(BadInput, match="expected a question"):
        runnable.invoke({"text": COST})


def passages_block(docs: list[Document]) -> str:
    return "\n".join(
        f'<passage n="{n}" doc_id="{d.metadata["doc_id"]}">{html.escape(d.page_content)}</passage>'
        for n, d in enumerate(docs, start=1)
    )


def test_an_lcel_chain_through_chatopenai_cites_passages_of_our_knowledge_base(
    local: LocalNemawashi, llm_url: str
) -> None:
    from langchain_openai import ChatOpenAI

    retriever: KnowledgeBaseRetriever = local.retriever(k=4, lang="ja")
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer only from the passages and cite each sentence as [n]."),
            ("user", "<question>{question}</question>\n{passages}"),
        ]
    )
    llm = ChatOpenAI(base_url=llm_url, api_key="not-needed", model="mock-llm", temperature=0)  # type: ignore[arg-type]
    answer = RunnableLambda(lambda x: {"question": x["question"], "passages": passages_block(x["docs"])}) | prompt | llm
    chain = {"docs": retriever, "question": RunnablePassthrough()} | RunnablePassthrough.assign(
        answer=answer | StrOutputParser()
    )
    result = chain.invoke(COST)
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])}
    assert cited and cited <= set(range(1, len(result["docs"]) + 1)), result["answer"]
    cited_ids = {result["docs"][n - 1].metadata["doc_id"] for n in cited}
    assert cited_ids <= kb_doc_ids(local) and any(d.startswith("faq-cost") for d in cited_ids), cited_ids


def test_importing_the_service_imports_no_langchain() -> None:
    code = (
        "import sys, service, service.main, service.cli, service.llm.client\n"
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'langgraph', 'anthropic'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
