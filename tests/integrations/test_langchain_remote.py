"""The HTTP variants against the real app served by uvicorn on loopback (fake embedder, mock LLM)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.db import session_scope
from service.errors import NemawashiError
from service.integrations.langchain import (
    KnowledgeBaseRetriever,
    RemoteKnowledgeBaseRetriever,
    RemoteTriageRunnable,
)
from service.triage.models import Question
from service.triage.schemas import AskResponse

COST = "BRIDGEの費用は全部でいくらかかりますか？"


def stored_source(app: Any, answer_id: str) -> str:
    with session_scope(app.state.sessionmaker) as session:
        return str(session.query(Question).filter_by(public_id=answer_id).one().source)


def test_the_remote_retriever_returns_what_the_server_searches(served: tuple[str, Any]) -> None:
    base, app = served
    remote = RemoteKnowledgeBaseRetriever(base_url=base, token="team-token", k=4, lang="ja")
    local = KnowledgeBaseRetriever.from_settings(app.state.settings, app.state.knowledge, k=4, lang="ja")
    docs = remote.invoke(COST)
    assert [d.metadata for d in docs] == [d.metadata for d in local.invoke(COST)]
    assert docs and all(d.metadata["lang"] == "ja" and d.metadata["url"].startswith("/kb/") for d in docs)
    faq = asyncio.run(remote.ainvoke(COST, types=["faq"], k=2))
    assert len(faq) == 2 and {d.metadata["type"] for d in faq} == {"faq"}


def test_the_remote_retriever_passes_the_servers_422_on(served: tuple[str, Any]) -> None:
    with pytest.raises(NemawashiError, match=r"422.*query is empty") as caught:
        RemoteKnowledgeBaseRetriever(base_url=served[0]).invoke("  ")
    assert caught.value.status_code == 422


def test_the_remote_runnable_answers_and_the_server_stores_it_as_langchain(served: tuple[str, Any]) -> None:
    base, app = served
    runnable = RemoteTriageRunnable(base, token="team-token")
    answer = runnable.invoke({"question": COST, "department": "営業部"})
    assert isinstance(answer, AskResponse) and answer.mode == "llm" and answer.citations
    assert stored_source(app, answer.id) == "langchain"
    comment = asyncio.run(runnable.ainvoke({"question": "AIに仕事を奪われてクビになるのが不安です。", "survey": True}))
    assert comment.root_cause.primary == "job_fear" and stored_source(app, comment.id) == "survey"


def test_the_remote_runnable_streams_the_text_then_the_response(served: tuple[str, Any]) -> None:
    *deltas, final = list(RemoteTriageRunnable(served[0]).stream(COST))
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, AskResponse) and "".join(deltas) == final.answer

    async def collect() -> list[Any]:
        return [part async for part in RemoteTriageRunnable(served[0]).astream(COST)]

    *async_deltas, async_final = asyncio.run(collect())
    assert "".join(async_deltas) == async_final.answer == final.answer and async_final.id != final.id
